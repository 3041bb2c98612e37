"""Which modules of the parent the next proposal rewrites."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gepa_cli.engine.registry import register
from gepa_cli.engine.state import Candidate

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings


class ComponentSelector(Protocol):
    name: str

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        """The modules to propose for; may advance the parent's round-robin position."""
        ...

    def most_per_iteration(self, modules: int) -> int:
        """The most proposer calls one iteration makes (reserved before it starts)."""
        ...


class RoundRobinComponents:
    name = "round_robin"

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        module = modules[parent.next_component % len(modules)]
        parent.next_component = (parent.next_component + 1) % len(modules)
        return [module]

    def most_per_iteration(self, modules: int) -> int:
        return 1


class AllComponents:
    name = "all"

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        return list(modules)

    def most_per_iteration(self, modules: int) -> int:
        return modules


@register("component_selector", RoundRobinComponents.name)
def _round_robin(_settings: EngineSettings) -> ComponentSelector:
    return RoundRobinComponents()


@register("component_selector", AllComponents.name)
def _all(_settings: EngineSettings) -> ComponentSelector:
    return AllComponents()
