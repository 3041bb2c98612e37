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

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import Proposal, admit
from gepa_cli.engine.chain import Chain
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.merge_step import MergeTrial, plan_merge_trial, test_merge
from gepa_cli.engine.rebase import POLICY as REBASE
from gepa_cli.engine.rebase import rebase
from gepa_cli.engine.reflection import ReflectionPlan, plan_reflection, reflect
from gepa_cli.engine.state import Candidate

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
    if proposal is None:
        return
    mine = _on_open_chain(ctx, plan)
    if proposal.passed and ctx.settings.staleness_policy == REBASE:
        if ctx.speculative:
            return  # what to validate is known only at the commit (rebase.py)
        rebased, on_chain = rebase(ctx, plan, proposal)
        if rebased is None:
            return
        proposal = rebased
        mine = mine if on_chain is None else on_chain
    if proposal.passed and mine and not _validate_now(ctx, proposal):
        extend_chain(ctx, proposal)
        return
    if proposal.passed and not ctx.speculative:
        no_room = _no_room_to_validate(ctx)
        if no_room is not None:
            if mine or ctx.state.chains.chain is None:
                # the child waits as the chain's tip: the end of the run validates it
                # from the room the pipeline keeps for that (pipeline.py)
                extend_chain(ctx, proposal)
            else:
                ctx.state.rejected_hashes.append(proposal.content_hash)
                abandon(
                    ctx,
                    proposal.iteration,
                    proposal.content_hash,
                    proposal.chain_length,
                    proposal.chain_proposals,
                    no_room,
                )
            return
    child = await admit(ctx, proposal)
    if proposal.passed:
        close_chain(ctx, proposal, child, ends_chain=mine)
    if child is None:
        return
    s, merge = ctx.settings, ctx.state.merge
    merge.last_iteration_found_new = True
    if s.use_merge and merge.tested + merge.due < s.max_merge_invocations:
        merge.due += 1


def _on_open_chain(ctx: StepContext, plan: ReflectionPlan) -> bool:
    """Whether the iteration grew from the open chain's tip (or from a selected parent
    while no chain is open). With overlapping iterations the chain may have moved on
    while it was in flight: such a child is validated, never made the tip."""
    chain = ctx.state.chains.chain
    current = None if chain is None else chain.tip
    return current == (None if plan.chain is None else plan.chain.tip)


def _no_room_to_validate(ctx: StepContext) -> str | None:
    """The limit a validation would pass now, if any. A serial iteration reserved its
    validation before it started; overlapping iterations reserve only their work ahead
    of the commit, so near the end of a budget a commit may find no room left."""
    return ctx.blocked_by(ctx.validation_worst_case())


def _validate_now(ctx: StepContext, proposal: Proposal) -> bool:
    return ctx.strategies.validation.wants_validation(proposal.chain_length, ctx.state.chains)


def extend_chain(ctx: StepContext, proposal: Proposal) -> None:
    book = ctx.state.chains
    book.chain = Chain(
        root_id=proposal.parents[0],
        tip=proposal.eval_id,
        texts=dict(proposal.texts),
        content_hash=proposal.content_hash,
        next_component=proposal.next_component,
        length=proposal.chain_length,
        proposal_ids=list(proposal.chain_proposals),
        verdict=dict(proposal.verdict),
    )
    # the tip's texts are spent: a proposal that writes them again is a duplicate
    ctx.state.rejected_hashes.append(proposal.content_hash)
    ctx.emitter.emit(
        ev.CHAIN_EXTENDED, {**proposal.verdict, "length": book.chain.length, "target": book.target}
    )


def close_chain(
    ctx: StepContext, proposal: Proposal, child: Candidate | None, *, ends_chain: bool
) -> None:
    """A child that passed its test was validated (or dropped): its chain ends, and
    whether it beat the candidate the chain grew from sets the next chain's target."""
    book = ctx.state.chains
    if ends_chain:
        book.chain = None
    root = ctx.state.by_id(proposal.parents[0])
    improved = child is not None and child.val_mean > root.val_mean
    ctx.strategies.validation.record_tip(book, improved)


async def finish_chain(ctx: StepContext) -> None:
    """Validate the open chain's tip at the end of the optimization (its edits would be
    lost otherwise). The budget left room for it: a serial iteration reserved one
    validation, and one that extended the chain did not spend it; overlapping
    iterations keep one validation aside for this (pipeline.py)."""
    book = ctx.state.chains
    chain = book.chain
    if chain is None:
        return
    limit = _no_room_to_validate(ctx)
    if limit is not None:
        book.chain = None
        iteration = ctx.state.counters.iteration
        abandon(ctx, iteration, chain.content_hash, chain.length, chain.proposal_ids, limit)
        return
    proposal = Proposal(
        origin="reflection",
        eval_id=chain.tip,
        texts=dict(chain.texts),
        content_hash=chain.content_hash,
        parents=[chain.root_id],
        iteration=ctx.state.counters.iteration,
        next_component=chain.next_component,
        passed=True,
        verdict=dict(chain.verdict),
        chain_length=chain.length,
        chain_proposals=list(chain.proposal_ids),
    )
    book.chain = None
    close_chain(ctx, proposal, await admit(ctx, proposal), ends_chain=False)


def abandon(
    ctx: StepContext,
    iteration: int,
    digest: str,
    length: int,
    proposal_ids: list[str],
    limit: str,
) -> None:
    """Edits that passed their tests but can never be validated: the budget has no room."""
    ctx.emitter.emit(
        ev.CHAIN_ABANDONED,
        {
            "iteration": iteration,
            "content_hash": digest,
            "length": length,
            "proposal_ids": list(proposal_ids),
            "reason": limit,
        },
    )


def plan_to_dict(plan: IterationPlan) -> dict[str, Any]:
    return plan.to_dict()


def plan_from_dict(data: Mapping[str, Any]) -> IterationPlan:
    if data.get("kind") == "merge":
        return MergeTrial.from_dict(data)
    return ReflectionPlan.from_dict(data)
