"""How a candidate joins the run. The seed, reflection children and merges all enter
through `register` and `validate`, so every candidate is announced, scored and weighed
against the frontier the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gepa_cli.engine import events as ev
from gepa_cli.engine.frontier import compute_frontier
from gepa_cli.engine.state import Candidate
from gepa_cli.engine.types import Texts
from gepa_cli.engine.validation import Screening

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


async def screen(
    engine: GepaEngine,
    eval_id: str,
    digest: str,
    texts: Texts,
    parents: Sequence[str],
) -> bool:
    """Run the validation policy's screen on a child that passed its test; False when
    the child is dropped (then it is never registered, and its texts never run again)."""
    state = engine.state
    iteration = state.counters.iteration
    rival_ids = dict.fromkeys([*parents, state.best().id])
    rivals = {cid: state.by_id(cid).val_scores for cid in rival_ids}

    async def score(ids: Sequence[str]) -> dict[str, float]:
        got = await engine.evals.evaluate(
            eval_id, digest, texts, ids, role="val", purpose="validation_stage", iteration=iteration
        )
        return {e: entry.score for e, entry in got.items()}

    def report(stage: Mapping[str, Any]) -> None:
        engine.emitter.emit(
            ev.VALIDATION_STAGE,
            {"iteration": iteration, "eval_id": eval_id, "content_hash": digest, **stage},
        )

    outcome: Screening = await engine.validation.screen(state.val_order, score, rivals, report)
    if not outcome.dropped:
        return True
    state.rejected_hashes.append(digest)
    engine.emitter.emit(
        ev.CANDIDATE_DROPPED,
        {
            "iteration": iteration,
            "eval_id": eval_id,
            "parent_ids": list(parents),
            "content_hash": digest,
            "stage": outcome.stage,
            "val_count": len(outcome.scores),
            "val_mean": sum(outcome.scores.values()) / len(outcome.scores),
            "rival_id": outcome.rival_id,
            "upper_bound": outcome.upper_bound,
        },
    )
    return False


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

    # every candidate is scored on the whole set (a screened child's stages are memo
    # hits here), so the frontier never compares scores that do not exist
    candidate.val_scores = dict(sorted((await score(list(state.val_ids))).items()))
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
