"""How a candidate joins the run. Reflection and merge each hand over a `Proposal`;
`admit` is the one way in: a child that failed its test is turned away, one that
passed is screened by the validation policy, then registered and validated. The seed
enters through `register` and `validate` too, so every candidate is announced, scored
and weighed against the frontier the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gepa_cli.engine import events as ev
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.state import Candidate
from gepa_cli.engine.types import Texts
from gepa_cli.engine.validation import Screening

Origin = Literal["reflection", "merge"]
ACCEPTED_EVENT = {"reflection": ev.CANDIDATE_ACCEPTED, "merge": ev.MERGE_ACCEPTED}
REJECTED_EVENT = {"reflection": ev.CANDIDATE_REJECTED, "merge": ev.MERGE_REJECTED}


@dataclass(frozen=True)
class Proposal:
    """A child on its way in: its texts, where they came from, and its test on the
    parents' ground (the minibatch, or the merge subsample)."""

    origin: Origin
    eval_id: str  # the first proposal id, or the merge id: how its rollouts are named
    texts: dict[str, str]
    content_hash: str
    parents: list[str]
    iteration: int
    next_component: int
    passed: bool
    verdict: dict[str, Any]  # the data of the accepted or rejected event
    # edits since the last validated candidate, this one included (chain.py), and
    # the proposals that wrote them
    chain_length: int = 1
    chain_proposals: list[str] = field(default_factory=list)


async def admit(ctx: StepContext, proposal: Proposal) -> Candidate | None:
    """The registered, validated child; None when it failed its test or the screen."""
    state, digest = ctx.state, proposal.content_hash
    if not proposal.passed:
        state.rejected_hashes.append(digest)
        ctx.emitter.emit(REJECTED_EVENT[proposal.origin], proposal.verdict)
        return None
    if not await screen(
        ctx, proposal.eval_id, digest, proposal.texts, proposal.parents, proposal.iteration
    ):
        return None
    child = Candidate(
        id=state.next_candidate_id(),
        texts=dict(proposal.texts),
        content_hash=digest,
        parents=list(proposal.parents),
        origin=proposal.origin,
        iteration=proposal.iteration,
        next_component=proposal.next_component,
    )
    accepted = {**proposal.verdict, "candidate_id": child.id}
    if proposal.chain_length > 1:
        accepted["chain"] = {
            "length": proposal.chain_length,
            "proposal_ids": list(proposal.chain_proposals),
        }
    ctx.emitter.emit(ACCEPTED_EVENT[proposal.origin], accepted)
    register(ctx, child, proposal=proposal.eval_id)
    await validate(ctx, child, proposal.iteration)
    return child


def register(ctx: StepContext, candidate: Candidate, *, proposal: str | None) -> None:
    ctx.state.candidates.append(candidate)
    ctx.emitter.emit(
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
    ctx: StepContext,
    eval_id: str,
    digest: str,
    texts: Texts,
    parents: Sequence[str],
    iteration: int,
) -> bool:
    """Run the validation policy's screen on a child that passed its test; False when
    the child is dropped (then it is never registered, and its texts never run again)."""
    state = ctx.state
    rival_ids = dict.fromkeys([*parents, state.best().id])
    rivals = {cid: state.by_id(cid).val_scores for cid in rival_ids}

    async def score(ids: Sequence[str]) -> dict[str, float]:
        got = await ctx.evals.evaluate(
            eval_id, digest, texts, ids, role="val", purpose="validation_stage", iteration=iteration
        )
        return {e: entry.score for e, entry in got.items()}

    def report(stage: Mapping[str, Any]) -> None:
        ctx.emitter.emit(
            ev.VALIDATION_STAGE,
            {"iteration": iteration, "eval_id": eval_id, "content_hash": digest, **stage},
        )

    validation = ctx.strategies.validation
    outcome: Screening = await validation.screen(state.val_order, score, rivals, report)
    if not outcome.dropped:
        return True
    state.rejected_hashes.append(digest)
    ctx.emitter.emit(
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


async def validate(ctx: StepContext, candidate: Candidate, iteration: int) -> None:
    state = ctx.state
    best_before = state.best().val_mean if len(state.candidates) > 1 else None

    async def score(ids: Sequence[str]) -> dict[str, float]:
        got = await ctx.evals.evaluate(
            candidate.id,
            candidate.content_hash,
            candidate.texts,
            ids,
            role="val",
            purpose="validation",
            iteration=iteration,
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
    ctx.emitter.emit(
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
    frontier, best_scores = state.frontier_index(ctx.settings.frontier_type).frontier()
    best = state.best()
    ctx.emitter.emit(
        ev.FRONTIER_UPDATED,
        {
            "frontier_type": ctx.settings.frontier_type,
            "frontier": frontier,
            "best_scores": best_scores,
            "best_candidate_id": best.id,
            "best_val_mean": best.val_mean,
        },
    )
