"""Turns the engine's events, rollouts and proposals into the files of a run directory.

The recorder is the engine's `EventSink`, `RolloutSink` and `CheckpointSink`: every
rollout the engine charges gets its ledger line, in the engine's logical order, and
every proposer call its line when its proposal event names it. It also wraps the
evaluator and the proposer, only to count what went live (a call is spent the moment
it is made, even if the work it belonged to never commits). Lines are buffered by the
ledgers and made durable together at each checkpoint, whose offsets let a resumed run
cut away whatever a crash left after it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gepa_cli.artifacts import EventWriter, Ledgers, RunDirectory, write_bytes_atomic
from gepa_cli.artifacts.ledger import dumps_line
from gepa_cli.artifacts.schema import (
    CHECKPOINT_FORMAT,
    CandidateRow,
    CheckpointDoc,
    ListenerError,
    ProposalRow,
    RolloutRow,
    RunnerState,
    SnapshotRef,
    SpendDoc,
    UsageTotals,
)
from gepa_cli.artifacts.schema import Usage as UsageRow
from gepa_cli.engine import (
    EvaluationRequest,
    Evaluator,
    ExampleResult,
    ProposalRequest,
    ProposalResult,
    Proposer,
    RunOutcome,
    Usage,
    content_hash,
)
from gepa_cli.errors import ProposerError
from gepa_cli.runner.feed import FeedIndex

EventListener = Callable[[Mapping[str, Any]], None]
# the ledger outcome of an answer the proposer could not use (never evaluated)
UNUSABLE = "unusable"

log = logging.getLogger("gepa_cli.runner")


class Spend:
    """Usage recorded this run (what its ledgers hold, by boundary), and the cost of
    the calls that went live (not cache hits)."""

    def __init__(self, saved: SpendDoc | None = None) -> None:
        saved = saved or SpendDoc()
        self.live_usd = saved.spent_usd
        self.live_known = saved.spent_known
        self.by_boundary = {name: totals.model_copy() for name, totals in saved.by_boundary.items()}

    def add(self, boundary: str, usage: Usage) -> None:
        """A call the ledgers record (a rollout charged, a proposer call answered)."""
        entry = self.by_boundary.setdefault(boundary, UsageTotals())
        entry.calls += 1
        entry.prompt_tokens += usage.prompt_tokens
        entry.completion_tokens += usage.completion_tokens
        entry.cost_usd += usage.cost_usd
        entry.cost_known = entry.cost_known and usage.cost_known

    def add_live(self, usage: Usage) -> None:
        self.live_usd += usage.cost_usd
        self.live_known = self.live_known and usage.cost_known

    @property
    def cost_usd(self) -> float:
        return sum((entry.cost_usd for entry in self.by_boundary.values()), 0.0)

    @property
    def cost_known(self) -> bool:
        return all(entry.cost_known for entry in self.by_boundary.values())

    @property
    def unpriced(self) -> list[str]:
        """The boundaries some of whose calls have no price."""
        return sorted(name for name, entry in self.by_boundary.items() if not entry.cost_known)

    def to_doc(self) -> SpendDoc:
        return SpendDoc(
            spent_usd=self.live_usd,
            spent_known=self.live_known,
            by_boundary={name: totals.model_copy() for name, totals in self.by_boundary.items()},
        )


class LiveCounters:
    """What a progress display may show between events: rollouts back from the
    container and not charged yet, and the proposer calls under way. Timing only:
    nothing here is recorded or decides anything."""

    def __init__(self) -> None:
        self.rollouts_back = 0
        self.proposing: dict[str, float] = {}  # proposal id -> monotonic start
        # evaluations under way by split ("train", "val", "heldout")
        self.evaluating: dict[str, int] = {}

    def rollout_back(self) -> None:
        self.rollouts_back += 1

    def proposing_seconds(self) -> tuple[float, ...]:
        now = time.monotonic()
        return tuple(now - started for started in list(self.proposing.values()))

    def splits_under_way(self) -> tuple[str, ...]:
        return tuple(sorted(split for split, n in list(self.evaluating.items()) if n > 0))


class RunRecorder:
    """Event sink and checkpoint sink of one run."""

    def __init__(
        self,
        run_dir: RunDirectory,
        ledgers: Ledgers,
        writer: EventWriter,
        *,
        spend: Spend,
        runner_state: Callable[[], RunnerState],
        listeners: tuple[EventListener, ...] = (),
        feed: FeedIndex | None = None,
        proposer_boundary: str = "proposer.command",
    ) -> None:
        self.run_dir = run_dir
        self.ledgers = ledgers
        self.writer = writer
        self.spend = spend
        self._runner_state = runner_state
        self._listeners = list(listeners)
        self.listener_errors: list[ListenerError] = []
        self.feed = feed or FeedIndex()
        self.proposer_boundary = proposer_boundary
        # each proposer call's prompt and raw answer, by proposal id, until its
        # proposal.completed or proposal.failed event names it
        self._calls: dict[str, dict[str, Any]] = {}
        # completed proposals waiting for their child's verdict
        self._proposals: dict[str, ProposalRow] = {}
        self.live = LiveCounters()

    @property
    def last_budget(self) -> dict[str, Any] | None:
        return self.feed.budget

    def outcome(self, stopped_by: str) -> RunOutcome | None:
        """What the feed says of the run so far (see `FeedIndex.outcome`)."""
        return self.feed.outcome(stopped_by)

    # -- EventSink -------------------------------------------------------------------
    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        event = self.writer.emit(event_type, data)
        self.feed.fold(event_type, data)
        handler = getattr(self, "_on_" + event_type.replace(".", "_"), None)
        if handler is not None:
            handler(data)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:
                # a caller's callback must never cost them the run: detach it, note it
                # (the manifest lists it) and go on
                self._listeners.remove(listener)
                failure = ListenerError(
                    listener=_name(listener), seq=event["seq"], error=f"{type(exc).__name__}: {exc}"
                )
                self.listener_errors.append(failure)
                log.warning(
                    "event listener %s raised at event %d and was detached: %s",
                    failure.listener,
                    failure.seq,
                    failure.error,
                    exc_info=exc,
                )

    def _on_candidate_validated(self, data: Mapping[str, Any]) -> None:
        cid = str(data["candidate_id"])
        # the candidate.registered facts plus its validation
        row = CandidateRow.model_validate(
            {
                **self.feed.registered.get(cid, {}),
                "candidate_id": cid,
                "val_mean": data["val_mean"],
                "val_count": data["val_count"],
                "objective_means": data.get("objective_means", {}),
            }
        )
        self.ledgers.candidates.append(row.dump())

    def _on_proposal_completed(self, data: Mapping[str, Any]) -> None:
        self.spend.add(self.proposer_boundary, Usage.from_dict(data.get("usage") or {}))
        row = self._proposal_row(data, outcome="pending", new_text=data.get("text"))
        self._proposals[row.proposal_id] = row

    def _on_proposal_failed(self, data: Mapping[str, Any]) -> None:
        kind = data.get("kind")
        if kind != "error":  # an answer came back (and could not be used)
            self.spend.add(self.proposer_boundary, Usage.from_dict(data.get("usage") or {}))
        # the event's "rejection" is an answer the proposer could not use: never
        # evaluated, unlike a "rejected" child, which cost its minibatch rollouts
        label = UNUSABLE if kind == "rejection" else kind
        outcome = f"{label}: {data.get('reason')}"
        self.ledgers.proposals.append(self._proposal_row(data, outcome=outcome).dump())

    def _on_candidate_accepted(self, data: Mapping[str, Any]) -> None:
        self._settle(data, "accepted", evaluated=True, candidate_id=data.get("candidate_id"))

    def _on_candidate_rejected(self, data: Mapping[str, Any]) -> None:
        self._settle(data, "rejected", evaluated=True)

    def _on_chain_extended(self, data: Mapping[str, Any]) -> None:
        # it passed its minibatch test (rollouts spent); validated later, as a chain's tip
        self._settle(data, f"extended: chain of {data.get('length')} edits", evaluated=True)

    def _on_chain_abandoned(self, data: Mapping[str, Any]) -> None:
        # a chain's edits are settled as "extended" already; this names a child that
        # passed its minibatch but found no room in the budget for its validation
        outcome = f"unvalidated: no room in the budget ({data.get('reason')})"
        self._settle(data, outcome, evaluated=True)

    def _on_candidate_duplicate(self, data: Mapping[str, Any]) -> None:
        self._settle(data, f"duplicate: {data.get('reason')}", evaluated=False)

    def _on_candidate_dropped(self, data: Mapping[str, Any]) -> None:
        # racing names the child by its eval id only; every proposal still open belongs
        # to this iteration's child, so they share its fate
        outcome = f"dropped: clearly worse than {data.get('rival_id')} at stage {data.get('stage')}"
        for row in self._proposals.values():
            row.outcome = outcome
            row.evaluated = True
            self.ledgers.proposals.append(row.dump())
        self._proposals.clear()

    def _proposal_row(
        self, data: Mapping[str, Any], *, outcome: str, new_text: str | None = None
    ) -> ProposalRow:
        proposal_id = str(data["proposal_id"])
        call = self._calls.pop(proposal_id, {})
        usage = data.get("usage")
        return ProposalRow(
            proposal_id=proposal_id,
            iteration=data.get("iteration"),
            parent_id=data.get("parent_id"),
            component=data.get("component"),
            prompt=call.get("prompt"),
            raw_output=call.get("raw_output"),
            usage=usage,
            cost_usd=(usage or {}).get("cost_usd"),
            cache_action=call.get("cache_action"),
            new_text=new_text,
            outcome=outcome,
            finish_reason=call.get("finish_reason"),
        )

    def _settle(
        self, data: Mapping[str, Any], outcome: str, *, evaluated: bool, **extra: Any
    ) -> None:
        for proposal_id in data.get("proposal_ids", []):
            row = self._proposals.pop(str(proposal_id), None)
            if row is not None:
                row.outcome = outcome
                row.evaluated = evaluated
                if "candidate_id" in extra:
                    row.candidate_id = extra["candidate_id"]
                self.ledgers.proposals.append(row.dump())

    def flush_unsettled(self) -> None:
        """Proposals whose child was never evaluated (the run ended mid-iteration)."""
        for row in self._proposals.values():
            row.outcome = "not_evaluated"
            self.ledgers.proposals.append(row.dump())
        self._proposals.clear()

    # -- RolloutSink -------------------------------------------------------------------
    def record_rollouts(
        self,
        request: EvaluationRequest,
        results: Sequence[ExampleResult],
        *,
        discarded: bool = False,
    ) -> None:
        digest = content_hash(request.texts)
        for result in results:
            self.spend.add("container.rollout", result.usage)
            row = RolloutRow(
                candidate_id=request.candidate_id,
                example_id=result.example_id,
                split=request.split,
                content_hash=digest,
                score=result.score,
                status=result.status,
                feedback=result.feedback,
                output=result.output,
                objectives=dict(result.objectives),
                usage=UsageRow.model_validate(result.usage.to_dict()),
                error=result.error,
                cache_action=result.meta.get("cache_action"),
                latency_ms=result.meta.get("latency_ms"),
                attempts=result.meta.get("attempts"),
                discarded=discarded,
            )
            self.ledgers.rollouts.append(row.dump())

    # -- CheckpointSink --------------------------------------------------------------
    def save_checkpoint(self, snapshot: Mapping[str, Any]) -> None:
        # candidates reach the disk before a frontier that names them
        offsets = self.ledgers.flush()
        self.write_frontier()
        runner = self._runner_state()
        if runner.cache_profile is not None:
            self.run_dir.write_document(self.run_dir.cache_profile, runner.cache_profile)
        if snapshot.get("next_event_index") != self.writer.next_seq:
            raise RuntimeError(  # the engine and the feed would resume at different events
                f"engine snapshot at event {snapshot.get('next_event_index')}, "
                f"feed at {self.writer.next_seq}"
            )
        # the snapshot under a name of its own, then the checkpoint that names it: a
        # crash in between leaves the previous pair intact
        path = self.run_dir.snapshot(int(snapshot.get("checkpoints_taken", 0)))
        payload = dumps_line(dict(snapshot))
        write_bytes_atomic(path, payload)
        checkpoint = CheckpointDoc(
            format=CHECKPOINT_FORMAT,
            snapshot=SnapshotRef(
                file=path.name, sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload)
            ),
            ledgers=offsets,
            next_seq=self.writer.next_seq,
            runner=runner,
        )
        self.run_dir.write_document(self.run_dir.checkpoint, checkpoint)
        for older in self.run_dir.snapshots():
            if older != path:
                older.unlink(missing_ok=True)

    def write_frontier(self) -> None:
        if self.feed.frontier is not None:
            self.run_dir.write_document(self.run_dir.frontier, self.feed.frontier)

    # -- wrappers for the engine's evaluator and proposer ------------------------------
    def recording_evaluator(self, inner: Evaluator) -> Evaluator:
        return _RecordingEvaluator(inner, self)

    def recording_proposer(self, inner: Proposer, boundary: str) -> Proposer:
        self.proposer_boundary = boundary
        return _RecordingProposer(inner, self, boundary)


def _name(listener: EventListener) -> str:
    name = getattr(listener, "__qualname__", None) or type(listener).__qualname__
    return f"{getattr(listener, '__module__', None) or '?'}.{name}"


class _RecordingEvaluator:
    """Counts the cost of rollouts that went live (their rows come through the engine)."""

    def __init__(self, inner: Evaluator, recorder: RunRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        live = self.recorder.live
        live.evaluating[request.split] = live.evaluating.get(request.split, 0) + 1
        try:
            results = await self.inner.evaluate(request)
        finally:
            # from here on the engine charges them (or the run ends): no longer "back"
            live.rollouts_back = max(0, live.rollouts_back - len(request.example_ids))
            live.evaluating[request.split] -= 1
        for result in results:
            if result.meta.get("cache_action") != "hit":
                self.recorder.spend.add_live(result.usage)
        return results


class _RecordingProposer:
    def __init__(self, inner: Proposer, recorder: RunRecorder, boundary: str) -> None:
        self.inner = inner
        self.recorder = recorder
        self.boundary = boundary

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        calls = self.recorder._calls
        live = self.recorder.live
        key = request.proposal_id or f"call-{id(request)}"
        live.proposing[key] = time.monotonic()
        try:
            result = await self.inner.propose(request)
        except ProposerError as error:
            calls[request.proposal_id] = {"error": error.one_line()}
            raise
        finally:
            live.proposing.pop(key, None)
        action = result.meta.get("cache_action")
        if action != "hit":
            self.recorder.spend.add_live(result.usage)
        calls[request.proposal_id] = {
            "prompt": result.prompt,
            "raw_output": result.raw_output,
            "cache_action": action,
            "finish_reason": result.meta.get("finish_reason"),
        }
        return result
