"""`Rollout`: what a rollout function is handed, and the bounds it runs within."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from gepa_cli.taskapp.types import PolicySettings, RolloutFailed


class Rollout:
    """One rollout in progress: the inputs, a trace being recorded, and its limits.

    ``step`` records one turn of a multi-turn rollout and ``check`` ends the rollout
    once its wall time is spent; both raise `RolloutFailed`, so a runaway agent loop
    stops with a clear reason instead of holding the container.
    """

    def __init__(
        self,
        *,
        candidate: Mapping[str, str],
        row: Mapping[str, Any],
        policy: PolicySettings,
        metadata: Mapping[str, Any],
        state: SimpleNamespace,
        max_seconds: float | None,
        max_steps: int | None,
        clock: Any = time.monotonic,
    ) -> None:
        self.candidate: dict[str, str] = dict(candidate)
        self.row: dict[str, Any] = dict(row)
        self.policy = policy
        self.metadata: dict[str, Any] = dict(metadata)
        self.state = state  # the app's state, filled by its lifespan
        self.steps: list[dict[str, Any]] = []
        self._clock = clock
        self._started = clock()
        self._max_seconds = max_seconds
        self._max_steps = max_steps

    @property
    def elapsed_seconds(self) -> float:
        return float(self._clock() - self._started)

    @property
    def remaining_seconds(self) -> float:
        if self._max_seconds is None:
            return float("inf")
        return max(0.0, self._max_seconds - self.elapsed_seconds)

    def check(self) -> None:
        """Raise `RolloutFailed` once the rollout is past ``max_rollout_seconds``."""
        if self._max_seconds is not None and self.elapsed_seconds > self._max_seconds:
            raise RolloutFailed(
                f"wall time: the rollout ran past max_rollout_seconds={self._max_seconds:g}"
            )

    def step(
        self,
        observation: Any = None,
        action: Any = None,
        reward: float = 0.0,
        messages: list[dict[str, Any]] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one step to the trace (and check the step and time limits)."""
        if self._max_steps is not None and len(self.steps) >= self._max_steps:
            raise RolloutFailed(
                f"step limit: the rollout took more than max_steps={self._max_steps} steps"
            )
        self.check()
        step = {
            "observation": observation,
            "action": action,
            "reward": float(reward),
            "messages": list(messages) if messages is not None else None,
            "info": dict(info) if info is not None else None,
        }
        self.steps.append(step)
        return step
