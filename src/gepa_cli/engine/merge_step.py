"""A merge iteration: the planned merge (merge.py) is tested on a validation subsample
drawn from where its parents win, lose and tie, and kept only if it does at least as
well there as the better parent; only then does it cost a full validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import register, screen, validate
from gepa_cli.engine.budget import Work
from gepa_cli.engine.merge import merge_subsample, plan_merge
from gepa_cli.engine.state import Candidate, content_hash

if TYPE_CHECKING:
    from gepa_cli.engine.loop import GepaEngine


async def try_merge(engine: GepaEngine) -> bool:
    """One merge attempt; False when no pair fits (the iteration reflects instead)."""
    s, state = engine.settings, engine.state
    iteration = state.counters.iteration
    plan = plan_merge(state, s.frontier_type, engine.rng)
    if plan is None:
        return False
    state.merge.tried_triplets.append([plan.first, plan.second, plan.ancestor])
    digest = content_hash(plan.texts)
    if state.seen_before(digest) is not None:
        return False
    first, second = state.by_id(plan.first), state.by_id(plan.second)
    subsample = merge_subsample(
        first.val_scores, second.val_scores, s.merge_subsample_size, engine.rng
    )
    worst = len(subsample) + engine.validation.worst_case_rollouts(len(state.val_ids))
    if not subsample or engine.guard.blocked_by(
        Work(optimization_rollouts=worst), engine.control.elapsed_seconds()
    ):
        return False
    state.merge.due -= 1
    state.merge.tested += 1
    state.merge.last_iteration_found_new = False
    state.counters.consecutive_noops = 0
    merge_id = f"m{state.merge.tested:04d}"
    engine.emitter.emit(
        ev.ITERATION_STARTED,
        {"iteration": iteration, "kind": "merge", "parent_id": plan.first},
    )
    engine.emitter.emit(
        ev.MERGE_PROPOSED,
        {
            "iteration": iteration,
            "merge_id": merge_id,
            "parent_ids": [plan.first, plan.second],
            "ancestor_id": plan.ancestor,
            "content_hash": digest,
            "texts": dict(plan.texts),
            "sources": dict(plan.sources),
            "subsample": list(subsample),
        },
    )
    got = await engine.evals.evaluate(
        merge_id,
        digest,
        plan.texts,
        subsample,
        role="val",
        purpose="merge_subsample",
        iteration=iteration,
    )
    parent_sums = [
        sum(first.val_scores[e] for e in subsample),
        sum(second.val_scores[e] for e in subsample),
    ]
    merge_sum = sum(got[e].score for e in subsample)
    verdict = {
        "iteration": iteration,
        "merge_id": merge_id,
        "parent_ids": [plan.first, plan.second],
        "content_hash": digest,
        "parent_sums": parent_sums,
        "merge_sum": merge_sum,
    }
    # at least as good as the better parent where the parents disagree
    if merge_sum < max(parent_sums):
        state.rejected_hashes.append(digest)
        engine.emitter.emit(ev.MERGE_REJECTED, verdict)
        return True
    if not await screen(engine, merge_id, digest, plan.texts, [plan.first, plan.second]):
        return True
    child = Candidate(
        id=state.next_candidate_id(),
        texts=dict(plan.texts),
        content_hash=digest,
        parents=[plan.first, plan.second],
        origin="merge",
        iteration=iteration,
        next_component=max(first.next_component, second.next_component),
    )
    engine.emitter.emit(ev.MERGE_ACCEPTED, {**verdict, "candidate_id": child.id})
    register(engine, child, proposal=merge_id)
    await validate(engine, child)
    return True
