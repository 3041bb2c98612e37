"""What a finished run hands back to its caller: its outcome record and final state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gepa_cli.engine.outcome import RunOutcome
from gepa_cli.engine.state import EngineState


@dataclass(frozen=True, kw_only=True)
class EngineResult(RunOutcome):
    state: EngineState

    @classmethod
    def of(cls, outcome: RunOutcome, state: EngineState) -> EngineResult:
        fields = {f.name: getattr(outcome, f.name) for f in dataclasses.fields(RunOutcome)}
        return cls(**fields, state=state)

    @property
    def outcome(self) -> RunOutcome:
        """The record alone, without the state."""
        return RunOutcome(**{f.name: getattr(self, f.name) for f in dataclasses.fields(RunOutcome)})

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data (without the state)."""
        return self.outcome.to_dict()
