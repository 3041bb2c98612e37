"""Which modules of the parent the next proposal rewrites."""

from __future__ import annotations

from typing import Protocol

from gepa_cli.engine.state import Candidate


class ComponentSelector(Protocol):
    name: str

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        """The modules to propose for; may advance the parent's round-robin position."""
        ...


class RoundRobinComponents:
    name = "round_robin"

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        module = modules[parent.next_component % len(modules)]
        parent.next_component = (parent.next_component + 1) % len(modules)
        return [module]


class AllComponents:
    name = "all"

    def select(self, parent: Candidate, modules: list[str]) -> list[str]:
        return list(modules)


def make_component_selector(name: str) -> ComponentSelector:
    if name == "round_robin":
        return RoundRobinComponents()
    if name == "all":
        return AllComponents()
    raise ValueError(f"unknown component selector {name!r}")
