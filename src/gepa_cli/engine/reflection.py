"""A reflection iteration: the parent's traces on a minibatch go to the proposer, and
the child it writes is tested against the parent on that same minibatch; `admit`
(admission.py) then decides, from that test, whether it costs a validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import Proposal
from gepa_cli.engine.budget import Work
from gepa_cli.engine.chain import Chain
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.state import Candidate, MemoEntry, content_hash, proposal_id
from gepa_cli.engine.types import ProposalRequest, ReflectiveRecord, Usage
from gepa_cli.errors import ProposerError

KEPT_FAILURE_REASONS = 5


class ProposerGaveUp(Exception):
    """Raised out of an iteration so the loop, not the step, ends the run."""


@dataclass(frozen=True)
class ReflectionPlan:
    """What a reflection decided before any of its work ran: every draw from the RNG
    and every change to the shared state happens here, so the work itself can run
    later (or twice) without deciding anything that depends on when it runs."""

    iteration: int
    parent_id: str
    minibatch: list[str]
    components: list[str]
    # the parent's round-robin position after this selection: the child inherits it
    next_component: int
    # numbered when the plan is made, if iterations overlap (else when each call is made)
    proposal_ids: list[str] | None = None
    # the open chain this iteration extends: its tip is the parent (chain.py)
    chain: Chain | None = None
    # how many candidates the run held when the plan was made (rebase.py)
    known_candidates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": None if self.chain is None else self.chain.to_dict(),
            "kind": "reflection",
            "iteration": self.iteration,
            "parent_id": self.parent_id,
            "minibatch": list(self.minibatch),
            "components": list(self.components),
            "next_component": self.next_component,
            "proposal_ids": None if self.proposal_ids is None else list(self.proposal_ids),
            "known_candidates": self.known_candidates,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReflectionPlan:
        ids = data["proposal_ids"]
        chain = data.get("chain")
        return cls(
            iteration=int(data["iteration"]),
            parent_id=str(data["parent_id"]),
            minibatch=[str(e) for e in data["minibatch"]],
            components=[str(m) for m in data["components"]],
            next_component=int(data["next_component"]),
            proposal_ids=None if ids is None else [str(p) for p in ids],
            chain=None if chain is None else Chain.from_dict(chain),
            known_candidates=int(data.get("known_candidates", 0)),
        )


def plan_reflection(ctx: StepContext, iteration: int, *, number: bool = False) -> ReflectionPlan:
    state, strategies = ctx.state, ctx.strategies
    chain = state.chains.chain
    if chain is not None:
        # an open chain goes on from its tip: no parent is drawn
        parent = chain.tip_candidate()
    else:
        selected = strategies.selector.select(state, ctx.settings.frontier_type, ctx.rng)
        parent = state.by_id(selected)
    minibatch = ctx.sampler.next_minibatch(ctx.rng)
    modules = strategies.components.select(parent, state.target_modules)
    if chain is not None:
        chain.next_component = parent.next_component
        chain = Chain.from_dict(chain.to_dict())  # the plan keeps the chain as it was
    ids = None
    if number:
        first = state.counters.proposals_made + 1
        state.counters.proposals_made += len(modules)
        ids = [proposal_id(first + k) for k in range(len(modules))]
    return ReflectionPlan(
        iteration,
        parent.id,
        minibatch,
        modules,
        parent.next_component,
        ids,
        chain,
        known_candidates=len(state.candidates),
    )


async def reflect(ctx: StepContext, plan: ReflectionPlan) -> Proposal | None:
    """The child of this iteration with its minibatch test; None when there is none
    (a perfect parent skipped, every proposal failed, or the texts were seen before)."""
    s, state, counters = ctx.settings, ctx.state, ctx.state.counters
    iteration, minibatch, modules = plan.iteration, plan.minibatch, plan.components
    chain = plan.chain
    parent = chain.tip_candidate() if chain is not None else state.by_id(plan.parent_id)
    started: dict[str, Any] = {
        "iteration": iteration,
        "kind": "reflection",
        "parent_id": parent.id,
        "minibatch": list(minibatch),
        "components": list(modules),
    }
    if chain is not None:
        started["chain"] = {"tip": chain.tip, "length": chain.length}
    ctx.emitter.emit(ev.ITERATION_STARTED, started)
    before = await ctx.evals.evaluate(
        chain.tip if chain is not None else parent.id,
        parent.content_hash,
        parent.texts,
        minibatch,
        role="train",
        purpose="minibatch_parent",
        iteration=iteration,
        capture_traces=True,
    )
    parent_scores = [before[e].score for e in minibatch]
    if s.skip_perfect_score and all(x >= s.perfect_score for x in parent_scores):
        counters.consecutive_noops += 1
        ctx.emitter.emit(
            ev.ITERATION_SKIPPED,
            {"iteration": iteration, "parent_id": parent.id, "reason": "perfect_score"},
        )
        return None
    records = [_record(ctx, e, before[e]) for e in minibatch]
    texts = dict(parent.texts)
    proposal_ids: list[str] = []
    for index, module in enumerate(modules):
        pid = None if plan.proposal_ids is None else plan.proposal_ids[index]
        new_text, pid = await _propose(ctx, parent, module, records, iteration, pid)
        if new_text is not None:
            texts[module] = new_text
            proposal_ids.append(pid)
    if not proposal_ids:
        return None
    digest = content_hash(texts)
    seen = state.seen_before(digest)
    if seen is not None:
        counters.consecutive_noops += 1
        ctx.emitter.emit(
            ev.CANDIDATE_DUPLICATE,
            {
                "iteration": iteration,
                "proposal_ids": proposal_ids,
                "parent_id": parent.id,
                "content_hash": digest,
                "reason": seen,
            },
        )
        return None
    counters.consecutive_noops = 0
    after = await ctx.evals.evaluate(
        proposal_ids[0],
        digest,
        texts,
        minibatch,
        role="train",
        purpose="minibatch_child",
        iteration=iteration,
    )
    child_scores = [after[e].score for e in minibatch]
    acceptance = ctx.strategies.acceptance
    return Proposal(
        origin="reflection",
        eval_id=proposal_ids[0],
        texts=texts,
        content_hash=digest,
        parents=[parent.id],
        iteration=iteration,
        next_component=plan.next_component,
        passed=acceptance.accepts(parent_scores, child_scores),
        chain_length=(chain.length if chain is not None else 0) + 1,
        chain_proposals=[*(chain.proposal_ids if chain is not None else []), *proposal_ids],
        verdict={
            "iteration": iteration,
            "proposal_ids": proposal_ids,
            "parent_id": parent.id,
            "content_hash": digest,
            "parent_sum": sum(parent_scores),
            "child_sum": sum(child_scores),
            "rule": acceptance.name,
        },
    )


def _record(ctx: StepContext, example_id: str, entry: MemoEntry) -> ReflectiveRecord:
    return ReflectiveRecord(
        example_id=example_id,
        inputs=ctx.state.inputs.get(example_id, {}),
        output=entry.output,
        score=entry.score,
        feedback=entry.feedback,
    )


async def _propose(
    ctx: StepContext,
    parent: Candidate,
    module: str,
    records: list[ReflectiveRecord],
    iteration: int,
    pid: str | None,
) -> tuple[str | None, str]:
    """One proposer call; the new text, or None after recording why there is none."""
    counters, ledger = ctx.state.counters, ctx.state.ledger
    ctx.evals.require(Work(proposals=1))
    if pid is None:
        counters.proposals_made += 1
        pid = proposal_id(counters.proposals_made)
    counters.proposals_since_improvement += 1
    current = parent.texts[module]
    request = ProposalRequest(
        parent.id, module, current, dict(parent.texts), records, proposal_id=pid
    )
    usage = Usage()
    try:
        answer = await ctx.proposer.propose(request)
    except ProposerError as exc:
        ledger.record_proposal(usage)
        kind, reason = "error", exc.message
    else:
        usage = answer.usage
        ledger.record_proposal(usage)
        kind, reason = "rejection", answer.rejection or ""
        text = answer.new_text
        if not reason:
            if text is None or not text.strip():
                reason = "empty"
            elif text.strip() == current.strip():
                reason = "unchanged"
            else:
                counters.consecutive_failures = 0
                counters.failure_reasons = []
                ctx.emitter.emit(
                    ev.PROPOSAL_COMPLETED,
                    {
                        "proposal_id": pid,
                        "iteration": iteration,
                        "parent_id": parent.id,
                        "component": module,
                        "text": text,
                        "usage": usage.to_dict(),
                    },
                )
                return text, pid
    counters.consecutive_failures += 1
    counters.failure_reasons = [*counters.failure_reasons, reason][-KEPT_FAILURE_REASONS:]
    ctx.emitter.emit(
        ev.PROPOSAL_FAILED,
        {
            "proposal_id": pid,
            "iteration": iteration,
            "parent_id": parent.id,
            "component": module,
            "kind": kind,
            "reason": reason,
            "consecutive_failures": counters.consecutive_failures,
            "usage": usage.to_dict(),
        },
    )
    if counters.consecutive_failures >= ctx.settings.max_consecutive_proposer_failures:
        raise ProposerGaveUp
    return None, pid


# what to do about the proposer's latest failures, by their reason (the rejection labels
# of gepa_cli.runtime.proposers.prompt, or an error); the first match of the latest wins
_GIVE_UP_HINTS = (
    ("truncated", "its answers were cut at max_tokens: raise [proposer] max_tokens"),
    (
        "no_fence",
        "its answers have no fenced block: use a model that follows the reflection "
        "prompt, or a [proposer] prompt_template it follows",
    ),
    (
        "unclosed_fence",
        "its answers open a fenced block and end without closing it: use a model that "
        "follows the reflection prompt, or a [proposer] prompt_template it follows",
    ),
    ("unchanged", "it keeps answering the current text: raise [proposer] temperature"),
    ("empty", "its answers are empty: check the model and its server's chat template"),
)


_LIMIT = "max_consecutive_proposer_failures"
# stands for the run directory, which only the caller knows (the runner fills it in)
RUN_DIR = "RUN_DIR"


def give_up_hint(reasons: list[str]) -> str:
    """How to go on after the proposer failed too often, for its latest failure."""
    latest = reasons[-1] if reasons else ""
    for label, hint in _GIVE_UP_HINTS:
        if latest == label:
            return (
                hint + "; then start a new run (or raise [gepa] max_consecutive_proposer_failures)"
            )
    return (
        "fix the proposer (start its model server, check [proposer] base_url or command) "
        f"or raise [gepa] {_LIMIT}, then continue the run with "
        f"`gepa-cli gepa resume {RUN_DIR}`"
    )


def failure_message(ctx: StepContext) -> str:
    counters = ctx.state.counters
    return (
        f"the proposer failed {counters.consecutive_failures} times in a row "
        f"(latest: {'; '.join(counters.failure_reasons)})"
    )
