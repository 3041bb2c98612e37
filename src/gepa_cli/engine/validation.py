"""How an accepted child is scored on the validation set.

A policy decides which validation examples to run, possibly in stages (a racing
policy stops a weak child early); the engine supplies the evaluation callback and
reserves the policy's worst case before the iteration starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

# evaluate the child on these validation ids -> example id -> score
ScoreBatch = Callable[[Sequence[str]], Awaitable[Mapping[str, float]]]


class ValidationPolicy(Protocol):
    name: str

    def worst_case_rollouts(self, val_size: int) -> int:
        """The most rollouts one validation may need (reserved before dispatch)."""
        ...

    async def validate(self, val_ids: Sequence[str], evaluate: ScoreBatch) -> dict[str, float]:
        """Scores of the child on the validation ids the policy chose to run."""
        ...


class FullValidation:
    name = "full"

    def worst_case_rollouts(self, val_size: int) -> int:
        return val_size

    async def validate(self, val_ids: Sequence[str], evaluate: ScoreBatch) -> dict[str, float]:
        return dict(await evaluate(list(val_ids)))


def make_validation_policy(name: str) -> ValidationPolicy:
    if name == "full":
        return FullValidation()
    raise ValueError(f"unknown validation policy {name!r}")
