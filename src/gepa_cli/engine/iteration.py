"""One iteration in two halves: `plan_iteration` decides (every RNG draw and every
change of shared bookkeeping), `run_iteration` does the work and admits the child.

Run back to back they are the serial GEPA loop. Kept apart, iterations can overlap
(pipeline.py): each is planned in order from the state as committed so far, and its
work can run while earlier ones finish, because nothing in the work decides anything
from when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gepa_cli.engine.admission import admit
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.merge_step import MergeTrial, plan_merge_trial, test_merge
from gepa_cli.engine.reflection import ReflectionPlan, plan_reflection, reflect

IterationPlan = ReflectionPlan | MergeTrial


def plan_iteration(ctx: StepContext, *, number_proposals: bool = False) -> IterationPlan:
    state, merge = ctx.state, ctx.state.merge
    state.counters.iteration += 1
    iteration = state.counters.iteration
    if ctx.settings.use_merge and merge.due > 0 and merge.last_iteration_found_new:
        trial = plan_merge_trial(ctx, iteration)
        if trial is not None:
            return trial
    merge.last_iteration_found_new = False
    return plan_reflection(ctx, iteration, number=number_proposals)


async def run_iteration(ctx: StepContext, plan: IterationPlan) -> None:
    if isinstance(plan, MergeTrial):
        await admit(ctx, await test_merge(ctx, plan))
        return
    proposal = await reflect(ctx, plan)
    if proposal is None or await admit(ctx, proposal) is None:
        return
    s, merge = ctx.settings, ctx.state.merge
    merge.last_iteration_found_new = True
    if s.use_merge and merge.tested + merge.due < s.max_merge_invocations:
        merge.due += 1


def plan_to_dict(plan: IterationPlan) -> dict[str, Any]:
    return plan.to_dict()


def plan_from_dict(data: Mapping[str, Any]) -> IterationPlan:
    if data.get("kind") == "merge":
        return MergeTrial.from_dict(data)
    return ReflectionPlan.from_dict(data)
