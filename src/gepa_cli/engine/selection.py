"""Parent selection strategies: which candidate the next reflection starts from."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

from gepa_cli.engine.frontier import front_counts, remove_dominated
from gepa_cli.engine.registry import register
from gepa_cli.engine.state import EngineState

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings


class CandidateSelector(Protocol):
    name: str

    def select(self, state: EngineState, frontier_type: str, rng: random.Random) -> str:
        """The id of the parent for the next reflective iteration."""
        ...


def _means(state: EngineState) -> dict[str, float]:
    return {c.id: c.val_mean for c in state.candidates}


def _pareto_draw(
    state: EngineState, frontier_type: str, rng: random.Random, allowed: set[str] | None
) -> str:
    frontier, _ = state.frontier_index(frontier_type).frontier()
    if allowed is not None:
        frontier = {k: [c for c in ids if c in allowed] for k, ids in frontier.items()}
        frontier = {k: ids for k, ids in frontier.items() if ids}
    if not frontier:
        return state.best().id
    counts = front_counts(remove_dominated(frontier, _means(state)))
    # a candidate on more fronts is drawn more often: it is best in more places
    pool = [cid for cid, count in counts.items() for _ in range(count)]
    return rng.choice(pool)


class ParetoSelector:
    name = "pareto"

    def select(self, state: EngineState, frontier_type: str, rng: random.Random) -> str:
        return _pareto_draw(state, frontier_type, rng, None)


class TopKParetoSelector:
    name = "top_k_pareto"

    def __init__(self, k: int) -> None:
        self.k = k

    def select(self, state: EngineState, frontier_type: str, rng: random.Random) -> str:
        ranked = sorted(state.candidates, key=lambda c: (-c.val_mean, c.id))
        allowed = {c.id for c in ranked[: self.k]}
        return _pareto_draw(state, frontier_type, rng, allowed)


class CurrentBestSelector:
    name = "current_best"

    def select(self, state: EngineState, frontier_type: str, rng: random.Random) -> str:
        return state.best().id


class EpsilonGreedySelector:
    name = "epsilon_greedy"

    def __init__(self, epsilon: float) -> None:
        self.epsilon = epsilon

    def select(self, state: EngineState, frontier_type: str, rng: random.Random) -> str:
        if rng.random() < self.epsilon:
            return rng.choice([c.id for c in state.candidates])
        return state.best().id


@register("candidate_selector", ParetoSelector.name)
def _pareto(_settings: EngineSettings) -> CandidateSelector:
    return ParetoSelector()


@register("candidate_selector", CurrentBestSelector.name)
def _current_best(_settings: EngineSettings) -> CandidateSelector:
    return CurrentBestSelector()


@register("candidate_selector", EpsilonGreedySelector.name)
def _epsilon_greedy(settings: EngineSettings) -> CandidateSelector:
    return EpsilonGreedySelector(settings.epsilon)


@register("candidate_selector", TopKParetoSelector.name)
def _top_k_pareto(settings: EngineSettings) -> CandidateSelector:
    return TopKParetoSelector(settings.top_k)
