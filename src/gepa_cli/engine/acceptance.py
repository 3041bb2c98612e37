"""Whether a child that was scored on the parent's minibatch is kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class AcceptanceRule(Protocol):
    name: str

    def accepts(self, parent_scores: Sequence[float], child_scores: Sequence[float]) -> bool: ...


class StrictImprovement:
    name = "strict_improvement"

    def accepts(self, parent_scores: Sequence[float], child_scores: Sequence[float]) -> bool:
        return sum(child_scores) > sum(parent_scores)


class ImprovementOrEqual:
    name = "improvement_or_equal"

    def accepts(self, parent_scores: Sequence[float], child_scores: Sequence[float]) -> bool:
        return sum(child_scores) >= sum(parent_scores)


def make_acceptance(name: str) -> AcceptanceRule:
    if name == "strict_improvement":
        return StrictImprovement()
    if name == "improvement_or_equal":
        return ImprovementOrEqual()
    raise ValueError(f"unknown acceptance rule {name!r}")
