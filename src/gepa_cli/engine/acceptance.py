"""Whether a child that was scored on the parent's minibatch is kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from gepa_cli.engine.registry import register

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings


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


@register("acceptance", StrictImprovement.name)
def _strict(_settings: EngineSettings) -> AcceptanceRule:
    return StrictImprovement()


@register("acceptance", ImprovementOrEqual.name)
def _or_equal(_settings: EngineSettings) -> AcceptanceRule:
    return ImprovementOrEqual()
