"""A reflection iteration: the parent's traces on a minibatch go to the proposer, and
the child it writes must beat the parent on that same minibatch before it costs a
validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import register, screen, validate
from gepa_cli.engine.budget import Work
from gepa_cli.engine.state import Candidate, MemoEntry, content_hash, proposal_id
from gepa_cli.engine.types import ProposalRequest, ReflectiveRecord, Usage
from gepa_cli.errors import ProposerError

if TYPE_CHECKING:
    from gepa_cli.engine.loop import GepaEngine

KEPT_FAILURE_REASONS = 5


class ProposerGaveUp(Exception):
    """Raised out of an iteration so the loop, not the step, ends the run."""


async def reflect(engine: GepaEngine) -> None:
    s, state, counters = engine.settings, engine.state, engine.state.counters
    iteration = counters.iteration
    parent = state.by_id(engine.selector.select(state, s.frontier_type, engine.rng))
    minibatch = engine.sampler.next_minibatch(engine.rng)
    modules = engine.components.select(parent, state.target_modules)
    engine.emitter.emit(
        ev.ITERATION_STARTED,
        {
            "iteration": iteration,
            "kind": "reflection",
            "parent_id": parent.id,
            "minibatch": list(minibatch),
            "components": list(modules),
        },
    )
    before = await engine.evals.evaluate(
        parent.id,
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
        engine.emitter.emit(
            ev.ITERATION_SKIPPED,
            {"iteration": iteration, "parent_id": parent.id, "reason": "perfect_score"},
        )
        return
    records = [_record(engine, e, before[e]) for e in minibatch]
    texts = dict(parent.texts)
    proposal_ids: list[str] = []
    for module in modules:
        new_text, pid = await _propose(engine, parent, module, records, iteration)
        if new_text is not None:
            texts[module] = new_text
            proposal_ids.append(pid)
    if not proposal_ids:
        return
    digest = content_hash(texts)
    seen = state.seen_before(digest)
    if seen is not None:
        counters.consecutive_noops += 1
        engine.emitter.emit(
            ev.CANDIDATE_DUPLICATE,
            {
                "iteration": iteration,
                "proposal_ids": proposal_ids,
                "parent_id": parent.id,
                "content_hash": digest,
                "reason": seen,
            },
        )
        return
    counters.consecutive_noops = 0
    after = await engine.evals.evaluate(
        proposal_ids[0],
        digest,
        texts,
        minibatch,
        role="train",
        purpose="minibatch_child",
        iteration=iteration,
    )
    child_scores = [after[e].score for e in minibatch]
    verdict = {
        "iteration": iteration,
        "proposal_ids": proposal_ids,
        "parent_id": parent.id,
        "content_hash": digest,
        "parent_sum": sum(parent_scores),
        "child_sum": sum(child_scores),
        "rule": engine.acceptance.name,
    }
    if not engine.acceptance.accepts(parent_scores, child_scores):
        state.rejected_hashes.append(digest)
        engine.emitter.emit(ev.CANDIDATE_REJECTED, verdict)
        return
    if not await screen(engine, proposal_ids[0], digest, texts, [parent.id]):
        return
    child = Candidate(
        id=state.next_candidate_id(),
        texts=texts,
        content_hash=digest,
        parents=[parent.id],
        origin="reflection",
        iteration=iteration,
        next_component=parent.next_component,
    )
    engine.emitter.emit(ev.CANDIDATE_ACCEPTED, {**verdict, "candidate_id": child.id})
    register(engine, child, proposal=proposal_ids[0])
    await validate(engine, child)
    state.merge.last_iteration_found_new = True
    if s.use_merge and state.merge.tested + state.merge.due < s.max_merge_invocations:
        state.merge.due += 1


def _record(engine: GepaEngine, example_id: str, entry: MemoEntry) -> ReflectiveRecord:
    return ReflectiveRecord(
        example_id=example_id,
        inputs=engine.state.inputs.get(example_id, {}),
        output=entry.output,
        score=entry.score,
        feedback=entry.feedback,
    )


async def _propose(
    engine: GepaEngine,
    parent: Candidate,
    module: str,
    records: list[ReflectiveRecord],
    iteration: int,
) -> tuple[str | None, str]:
    """One proposer call; the new text, or None after recording why there is none."""
    counters, ledger = engine.state.counters, engine.state.ledger
    engine.evals.require(Work(proposals=1))
    counters.proposals_made += 1
    counters.proposals_since_improvement += 1
    pid = proposal_id(counters.proposals_made)
    current = parent.texts[module]
    request = ProposalRequest(
        parent.id, module, current, dict(parent.texts), records, proposal_id=pid
    )
    usage = Usage()
    try:
        answer = await engine.proposer.propose(request)
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
                engine.emitter.emit(
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
    engine.emitter.emit(
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
    if counters.consecutive_failures >= engine.settings.max_consecutive_proposer_failures:
        raise ProposerGaveUp
    return None, pid


def failure_message(engine: GepaEngine) -> str:
    counters = engine.state.counters
    return (
        f"the proposer failed {counters.consecutive_failures} times in a row "
        f"(latest: {'; '.join(counters.failure_reasons)})"
    )
