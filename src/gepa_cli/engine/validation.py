"""How an accepted child earns its validation.

A policy first *screens* the child (a racing policy validates it in stages and may
drop it); a child that survives is then scored on the full validation set by the
engine, so every candidate in the run has full validation scores. The engine reserves
the policy's worst case before the iteration starts.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gepa_cli.engine.registry import register

if TYPE_CHECKING:
    from gepa_cli.engine.chain import ChainBook
    from gepa_cli.engine.settings import EngineSettings

# evaluate the child on these validation ids -> example id -> score
ScoreBatch = Callable[[Sequence[str]], Awaitable[Mapping[str, float]]]
# called after each stage with the stage's record (the engine emits it as an event)
StageReport = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Screening:
    """The outcome of a screen: kept, or dropped by one rival at one stage."""

    dropped: bool = False
    stage: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    rival_id: str | None = None
    upper_bound: float | None = None


class ValidationPolicy(Protocol):
    name: str

    def worst_case_rollouts(self, val_size: int) -> int:
        """The most rollouts one validation may need (reserved before dispatch)."""
        ...

    def draw_order(self, val_ids: Sequence[str], rng: random.Random) -> list[str]:
        """The run's one order of validation ids (drawn once, at the start)."""
        ...

    async def screen(
        self,
        order: Sequence[str],
        evaluate: ScoreBatch,
        rivals: Mapping[str, Mapping[str, float]],
        report: StageReport,
    ) -> Screening:
        """Decide whether the child is worth its full validation."""
        ...

    def wants_validation(self, length: int, book: ChainBook) -> bool:
        """Whether a child that passed its test, ``length`` edits from the last
        validated candidate, is validated now (else it extends the chain)."""
        ...

    def record_tip(self, book: ChainBook, improved: bool) -> None:
        """Learn from a validated child: did it beat the candidate its chain grew from."""
        ...


class FullValidation:
    """Today's GEPA: every accepted child is validated on the whole set."""

    name = "full"

    def wants_validation(self, length: int, book: ChainBook) -> bool:
        return True

    def record_tip(self, book: ChainBook, improved: bool) -> None:
        return None

    def worst_case_rollouts(self, val_size: int) -> int:
        return val_size

    def draw_order(self, val_ids: Sequence[str], rng: random.Random) -> list[str]:
        # no draw: the RNG stream (and so the run) stays exactly what it always was
        return []

    async def screen(
        self,
        order: Sequence[str],
        evaluate: ScoreBatch,
        rivals: Mapping[str, Mapping[str, float]],
        report: StageReport,
    ) -> Screening:
        return Screening()


@register("validation", FullValidation.name)
def _full(_settings: EngineSettings) -> ValidationPolicy:
    return FullValidation()
