"""One registry of strategies per kind: the names a config may choose from, and how
each is built from the settings.

Every strategy module registers its strategies here, once, under the name the config
and the event feed use. `EngineSettings` and the config models take their choices from
`names`, so a strategy registered from Python (`register`) is a valid config value
too. Where the Python API is used directly, a strategy object (anything with a
``name``) may stand in for a name; its name is what the feed records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings

# kind -> the settings field holding the choice (the config key, for "validation")
KINDS = {
    "candidate_selector": "candidate_selector",
    "acceptance": "acceptance",
    "component_selector": "component_selector",
    "validation": "validation_policy",
    "minibatch_schedule": "minibatch_schedule",
}

Factory = Callable[["EngineSettings"], Any]

_FACTORIES: dict[str, dict[str, Factory]] = {kind: {} for kind in KINDS}


class Named(Protocol):
    """What every strategy has: the name it is registered and recorded under."""

    @property
    def name(self) -> str: ...


def register(kind: str, name: str) -> Callable[[Factory], Factory]:
    """``@register("candidate_selector", "pareto")`` over a factory ``settings -> strategy``."""
    if kind not in _FACTORIES:
        raise ValueError(f"unknown strategy kind {kind!r}; use one of {', '.join(KINDS)}")

    def add(factory: Factory) -> Factory:
        known = _FACTORIES[kind].get(name)
        if known is not None and known is not factory:
            raise ValueError(f"{kind} {name!r} is already registered")
        _FACTORIES[kind][name] = factory
        return factory

    return add


def names(kind: str) -> tuple[str, ...]:
    """The registered names of one kind, in registration order."""
    _load_builtins()
    return tuple(_FACTORIES[kind])


def choice_name(choice: str | Named) -> str:
    return choice if isinstance(choice, str) else choice.name


def build(kind: str, choice: str | Named, settings: EngineSettings) -> Any:
    """The strategy a settings field names (or the object it holds)."""
    if not isinstance(choice, str):
        return choice
    _load_builtins()
    try:
        factory = _FACTORIES[kind][choice]
    except KeyError:
        raise ValueError(f"unknown {kind} {choice!r}") from None
    return factory(settings)


def _load_builtins() -> None:
    # the strategy modules import the state and settings, which import this module:
    # importing them here, on first use, keeps the import graph free of cycles
    from gepa_cli.engine import (
        acceptance,
        chain,
        components,
        racing,
        schedule,
        selection,
        validation,
    )

    del acceptance, chain, components, racing, schedule, selection, validation
