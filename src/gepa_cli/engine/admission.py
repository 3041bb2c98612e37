"""How a candidate joins the run. The seed, reflection children and merges all enter
through `register` and `validate`, so every candidate is announced, scored and weighed
against the frontier the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gepa_cli.engine import events as ev
from gepa_cli.engine.frontier import compute_frontier
from gepa_cli.engine.state import Candidate

if TYPE_CHECKING:
    from gepa_cli.engine.loop import GepaEngine


def register(engine: GepaEngine, candidate: Candidate, *, proposal: str | None) -> None:
    engine.state.candidates.append(candidate)
    engine.emitter.emit(
        ev.CANDIDATE_REGISTERED,
        {
            "candidate_id": candidate.id,
            "content_hash": candidate.content_hash,
            "parents": list(candidate.parents),
            "origin": candidate.origin,
            "iteration": candidate.iteration,
            "proposal_id": proposal,
            "texts": dict(candidate.texts),
        },
    )


async def validate(engine: GepaEngine, candidate: Candidate) -> None:
    state = engine.state
    best_before = state.best().val_mean if len(state.candidates) > 1 else None

    async def score(ids: Sequence[str]) -> dict[str, float]:
        got = await engine.evals.evaluate(
            candidate.id,
            candidate.content_hash,
            candidate.texts,
            ids,
            role="val",
            purpose="validation",
            iteration=state.counters.iteration,
        )
        return {e: entry.score for e, entry in got.items()}

    candidate.val_scores = dict(
        sorted((await engine.validation.validate(state.val_ids, score)).items())
    )
    rows = state.memo[candidate.content_hash]
    sums: dict[str, list[float]] = {}
    for eid in candidate.val_scores:
        for name, value in rows[eid].objectives.items():
            sums.setdefault(name, []).append(value)
    candidate.val_objectives = {n: sum(v) / len(v) for n, v in sorted(sums.items())}
    engine.emitter.emit(
        ev.CANDIDATE_VALIDATED,
        {
            "candidate_id": candidate.id,
            "val_mean": candidate.val_mean,
            "val_count": len(candidate.val_scores),
            "objective_means": dict(candidate.val_objectives),
        },
    )
    if best_before is not None and candidate.val_mean > best_before:
        state.counters.proposals_since_improvement = 0
    frontier, best_scores = compute_frontier(state.candidates, engine.settings.frontier_type)
    best = state.best()
    engine.emitter.emit(
        ev.FRONTIER_UPDATED,
        {
            "frontier_type": engine.settings.frontier_type,
            "frontier": frontier,
            "best_scores": best_scores,
            "best_candidate_id": best.id,
            "best_val_mean": best.val_mean,
        },
    )
