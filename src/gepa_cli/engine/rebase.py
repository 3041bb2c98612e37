"""A stale child rebased onto what was committed while it was in flight
(``[gepa.pipeline] staleness_policy = "rebase"``).

With K iterations overlapping, iteration i grew from the run as it stood at iteration
i - K. When a descendant of its parent was admitted meanwhile (or, under adaptive
validation, its chain moved on), the child's edit is applied to that newer candidate
as a three-way merge of texts: the edit the proposer made (parent -> child) replayed
on top of the newer text, line by line. So the edits of overlapping iterations build
on each other as a serial run's do, instead of becoming K siblings of one parent that
each cost a validation. A merge that conflicts (textmerge.py) leaves the child as it
was. The child's minibatch test (against its own parent) still decides whether it
goes on; the merged text then goes on as a child of the newer candidate (or as the
chain's next edit), and, like any child, enters the frontier only once validated.

Only the commit rebases (it sees the committed state); an iteration's work ahead of
its commit stops after the minibatch test, since what it would validate is not known
yet.
"""

from __future__ import annotations

import dataclasses

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import Proposal
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.reflection import ReflectionPlan
from gepa_cli.engine.state import content_hash
from gepa_cli.engine.textmerge import merge_texts

POLICY = "rebase"


def rebase(
    ctx: StepContext, plan: ReflectionPlan, proposal: Proposal
) -> tuple[Proposal | None, bool | None]:
    """The proposal to admit instead (None: its rebased text was seen before), and
    whether it extends the open chain (None: as the plan decided)."""
    state = ctx.state
    base = plan.chain.texts if plan.chain is not None else state.by_id(plan.parent_id).texts
    root = plan.chain.root_id if plan.chain is not None else plan.parent_id
    onto = _newer_version(ctx, plan, root)
    if onto is None:
        return proposal, None
    onto_id, onto_texts = onto
    texts = merge_texts(base, proposal.texts, onto_texts)
    if texts is None:
        return proposal, None
    digest = content_hash(texts)
    ids = list(proposal.verdict["proposal_ids"])
    ctx.emitter.emit(
        ev.PROPOSAL_REBASED,
        {
            "iteration": plan.iteration,
            "proposal_ids": ids,
            "parent_id": proposal.parents[0],
            "onto": onto_id,
            "content_hash": proposal.content_hash,
            "rebased_hash": digest,
        },
    )
    # the child as proposed is spent: the same texts proposed again are a duplicate
    state.rejected_hashes.append(proposal.content_hash)
    seen = state.seen_before(digest)
    if seen is not None:
        ctx.emitter.emit(
            ev.CANDIDATE_DUPLICATE,
            {
                "iteration": plan.iteration,
                "proposal_ids": ids,
                "parent_id": proposal.parents[0],
                "content_hash": digest,
                "reason": seen,
            },
        )
        return None, None
    chain = state.chains.chain
    rebased = dataclasses.replace(
        proposal,
        texts=texts,
        content_hash=digest,
        verdict={**proposal.verdict, "content_hash": digest},
        parents=[chain.root_id if chain is not None else onto_id],
        chain_length=1 if chain is None else chain.length + 1,
        chain_proposals=ids if chain is None else [*chain.proposal_ids, *ids],
    )
    return rebased, True


def _newer_version(
    ctx: StepContext, plan: ReflectionPlan, root: str
) -> tuple[str, dict[str, str]] | None:
    """What grew from the plan's parent while the iteration was in flight: the open
    chain's tip (under adaptive validation), else the best candidate admitted since the
    plan that descends from the parent. None when nothing did."""
    state = ctx.state
    chain = state.chains.chain
    if chain is not None:
        if plan.chain is not None and plan.chain.tip == chain.tip:
            return None  # the plan's own chain, not moved on
        if chain.root_id == root or root in state.ancestors(chain.root_id):
            return chain.tip, dict(chain.texts)
        return None
    grown = [
        c
        for c in state.candidates[plan.known_candidates :]
        if c.id == root or root in state.ancestors(c.id)
    ]
    if not grown:
        return None
    # the best, the latest of equals (max keeps the first of equals: search reversed)
    best = max(reversed(grown), key=lambda c: c.val_mean)
    return best.id, dict(best.texts)
