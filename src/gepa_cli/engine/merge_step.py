"""A merge iteration: the planned merge (merge.py) is tested on a validation subsample
drawn from where its parents win, lose and tie; it passes when it does at least as
well there as the better parent, and only then may `admit` give it a full validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import Proposal
from gepa_cli.engine.budget import Work
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.merge import merge_subsample, plan_merge
from gepa_cli.engine.state import content_hash


@dataclass(frozen=True)
class MergeTrial:
    """A merge decided and booked before its subsample runs (see `ReflectionPlan`)."""

    iteration: int
    merge_id: str
    first: str
    second: str
    ancestor: str
    texts: dict[str, str]
    sources: dict[str, str]
    content_hash: str
    subsample: list[str]
    next_component: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "merge", **{k: getattr(self, k) for k in self.__dataclass_fields__}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MergeTrial:
        return cls(
            iteration=int(data["iteration"]),
            merge_id=str(data["merge_id"]),
            first=str(data["first"]),
            second=str(data["second"]),
            ancestor=str(data["ancestor"]),
            texts={str(k): str(v) for k, v in data["texts"].items()},
            sources={str(k): str(v) for k, v in data["sources"].items()},
            content_hash=str(data["content_hash"]),
            subsample=[str(e) for e in data["subsample"]],
            next_component=int(data["next_component"]),
        )


def plan_merge_trial(ctx: StepContext, iteration: int) -> MergeTrial | None:
    """The merge this iteration tries, booked; None when no pair fits (the iteration
    reflects instead)."""
    s, state = ctx.settings, ctx.state
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
    worst = len(subsample) + ctx.validation_worst_case().optimization_rollouts
    if not subsample or ctx.blocked_by(Work(optimization_rollouts=worst)):
        return None
    state.merge.due -= 1
    state.merge.tested += 1
    state.merge.last_iteration_found_new = False
    state.counters.consecutive_noops = 0
    return MergeTrial(
        iteration=iteration,
        merge_id=f"m{state.merge.tested:04d}",
        first=plan.first,
        second=plan.second,
        ancestor=plan.ancestor,
        texts=dict(plan.texts),
        sources=dict(plan.sources),
        content_hash=digest,
        subsample=list(subsample),
        next_component=max(first.next_component, second.next_component),
    )


async def test_merge(ctx: StepContext, trial: MergeTrial) -> Proposal:
    """The merge scored on its subsample, with the verdict `admit` acts on."""
    state, iteration = ctx.state, trial.iteration
    first, second = state.by_id(trial.first), state.by_id(trial.second)
    ctx.emitter.emit(
        ev.ITERATION_STARTED,
        {"iteration": iteration, "kind": "merge", "parent_id": trial.first},
    )
    ctx.emitter.emit(
        ev.MERGE_PROPOSED,
        {
            "iteration": iteration,
            "merge_id": trial.merge_id,
            "parent_ids": [trial.first, trial.second],
            "ancestor_id": trial.ancestor,
            "content_hash": trial.content_hash,
            "texts": dict(trial.texts),
            "sources": dict(trial.sources),
            "subsample": list(trial.subsample),
        },
    )
    got = await ctx.evals.evaluate(
        trial.merge_id,
        trial.content_hash,
        trial.texts,
        trial.subsample,
        role="val",
        purpose="merge_subsample",
        iteration=iteration,
    )
    parent_sums = [
        sum(first.val_scores[e] for e in trial.subsample),
        sum(second.val_scores[e] for e in trial.subsample),
    ]
    merge_sum = sum(got[e].score for e in trial.subsample)
    return Proposal(
        origin="merge",
        eval_id=trial.merge_id,
        texts=dict(trial.texts),
        content_hash=trial.content_hash,
        parents=[trial.first, trial.second],
        iteration=iteration,
        next_component=trial.next_component,
        # at least as good as the better parent where the parents disagree
        passed=merge_sum >= max(parent_sums),
        verdict={
            "iteration": iteration,
            "merge_id": trial.merge_id,
            "parent_ids": [trial.first, trial.second],
            "content_hash": trial.content_hash,
            "parent_sums": parent_sums,
            "merge_sum": merge_sum,
        },
    )
