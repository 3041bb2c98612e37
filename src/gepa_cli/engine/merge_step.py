"""A merge iteration: the planned merge (merge.py) is tested on a validation subsample
drawn from where its parents win, lose and tie; it passes when it does at least as
well there as the better parent, and only then may `admit` give it a full validation."""

from __future__ import annotations

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import Proposal
from gepa_cli.engine.budget import Work
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.merge import merge_subsample, plan_merge
from gepa_cli.engine.state import content_hash


async def try_merge(ctx: StepContext) -> Proposal | None:
    """One merge attempt, tested; None when no pair fits (the iteration reflects instead)."""
    s, state = ctx.settings, ctx.state
    iteration = state.counters.iteration
    plan = plan_merge(state, s.frontier_type, ctx.rng)
    if plan is None:
        return None
    state.merge.tried_triplets.append([plan.first, plan.second, plan.ancestor])
    digest = content_hash(plan.texts)
    if state.seen_before(digest) is not None:
        return None
    first, second = state.by_id(plan.first), state.by_id(plan.second)
    subsample = merge_subsample(
        first.val_scores, second.val_scores, s.merge_subsample_size, ctx.rng
    )
    worst = len(subsample) + ctx.strategies.validation.worst_case_rollouts(len(state.val_ids))
    if not subsample or ctx.blocked_by(Work(optimization_rollouts=worst)):
        return None
    state.merge.due -= 1
    state.merge.tested += 1
    state.merge.last_iteration_found_new = False
    state.counters.consecutive_noops = 0
    merge_id = f"m{state.merge.tested:04d}"
    ctx.emitter.emit(
        ev.ITERATION_STARTED,
        {"iteration": iteration, "kind": "merge", "parent_id": plan.first},
    )
    ctx.emitter.emit(
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
    got = await ctx.evals.evaluate(
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
    # at least as good as the better parent where the parents disagree
    return Proposal(
        origin="merge",
        eval_id=merge_id,
        texts=dict(plan.texts),
        content_hash=digest,
        parents=[plan.first, plan.second],
        iteration=iteration,
        next_component=max(first.next_component, second.next_component),
        passed=merge_sum >= max(parent_sums),
        verdict={
            "iteration": iteration,
            "merge_id": merge_id,
            "parent_ids": [plan.first, plan.second],
            "content_hash": digest,
            "parent_sums": parent_sums,
            "merge_sum": merge_sum,
        },
    )
