"""Turns the engine's events, rollouts and proposals into the files of a run directory.

The recorder is the engine's `EventSink` and `CheckpointSink`, and wraps the evaluator
and the proposer so every dispatched rollout and every proposer call gets its ledger
line. Lines are buffered by the ledgers and made durable together at each checkpoint,
whose offsets let a resumed run cut away whatever a crash left after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from gepa_cli.artifacts import EventWriter, Ledgers, RunDirectory
from gepa_cli.engine import (
    EvaluationRequest,
    Evaluator,
    ExampleResult,
    ProposalRequest,
    ProposalResult,
    Proposer,
    Usage,
)
from gepa_cli.errors import ProposerError

CHECKPOINT_FORMAT = "gepa_cli.run.checkpoint.v1"

EventListener = Callable[[Mapping[str, Any]], None]


def candidate_row(registered: Mapping[str, Any], validated: Mapping[str, Any]) -> dict[str, Any]:
    """One candidates.jsonl line: the candidate.registered facts plus its validation."""
    row = {
        key: registered.get(key)
        for key in ("content_hash", "parents", "origin", "iteration", "proposal_id", "texts")
    }
    return {
        "candidate_id": validated["candidate_id"],
        **row,
        "val_mean": validated["val_mean"],
        "val_count": validated["val_count"],
        "objective_means": validated.get("objective_means", {}),
    }


class Spend:
    """Usage recorded this run, split into what was replayed and what went live."""

    def __init__(self) -> None:
        self.live_usd = 0.0
        self.by_boundary: dict[str, dict[str, Any]] = {}

    def add(self, boundary: str, usage: Usage, *, live: bool) -> None:
        entry = self.by_boundary.setdefault(
            boundary,
            {
                "calls": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": 0.0,
                "cost_known": True,
            },
        )
        entry["calls"] += 1
        entry["prompt_tokens"] += usage.prompt_tokens
        entry["completion_tokens"] += usage.completion_tokens
        entry["cost_usd"] += usage.cost_usd
        entry["cost_known"] = entry["cost_known"] and usage.cost_known
        if live:
            self.live_usd += usage.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {"spent_usd": self.live_usd, "by_boundary": self.by_boundary}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spend:
        spend = cls()
        spend.live_usd = float(data.get("spent_usd", 0.0))
        spend.by_boundary = {k: dict(v) for k, v in dict(data.get("by_boundary", {})).items()}
        return spend


class RunRecorder:
    """Event sink and checkpoint sink of one run."""

    def __init__(
        self,
        run_dir: RunDirectory,
        ledgers: Ledgers,
        writer: EventWriter,
        *,
        spend: Spend,
        runner_state: Callable[[], dict[str, Any]],
        listeners: tuple[EventListener, ...] = (),
    ) -> None:
        self.run_dir = run_dir
        self.ledgers = ledgers
        self.writer = writer
        self.spend = spend
        self._runner_state = runner_state
        self._listeners = listeners
        self._registered: dict[str, dict[str, Any]] = {}
        self._frontier: dict[str, Any] | None = None
        self._pending_proposals: deque[dict[str, Any]] = deque()
        self._proposals: dict[str, dict[str, Any]] = {}
        self.last_checkpoint_index = 0
        self.last_budget: dict[str, Any] | None = None
        self.finished_stopped_by: str | None = None
        self.finished: dict[str, Any] | None = None
        self._validated: dict[str, dict[str, Any]] = {}
        self._iterations = 0

    # -- EventSink -------------------------------------------------------------------
    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        event = self.writer.emit(event_type, data)
        handler = getattr(self, "_on_" + event_type.replace(".", "_"), None)
        if handler is not None:
            handler(data)
        for listener in self._listeners:
            listener(event)

    def _on_candidate_registered(self, data: Mapping[str, Any]) -> None:
        self._registered[str(data["candidate_id"])] = dict(data)

    def _on_iteration_started(self, data: Mapping[str, Any]) -> None:
        self._iterations = max(self._iterations, int(data.get("iteration", 0)))

    def _on_candidate_validated(self, data: Mapping[str, Any]) -> None:
        self._validated[str(data["candidate_id"])] = dict(data)
        registered = self._registered.get(str(data["candidate_id"]), {})
        row = candidate_row(registered, data)
        self.ledgers.candidates.append(row)

    def _on_budget_updated(self, data: Mapping[str, Any]) -> None:
        self.last_budget = {k: v for k, v in data.items() if k not in ("iteration", "limits")}

    def _on_run_finished(self, data: Mapping[str, Any]) -> None:
        self.finished = dict(data)
        self.finished_stopped_by = data.get("stopped_by")
        if isinstance(data.get("budget"), Mapping):
            self.last_budget = dict(data["budget"])

    def outcome(self) -> dict[str, Any] | None:
        """What the feed says of the run so far: ``run.finished`` when the engine got
        there, else the best candidate of the last frontier (a run that failed midway)."""
        if self.finished is not None:
            facts = dict(self.finished)
        elif self._frontier is not None:
            best = str(self._frontier.get("best_candidate_id"))
            seed = self._validated.get("c0000", {})
            facts = {
                "best_candidate_id": best,
                "best_val_mean": self._validated.get(best, {}).get("val_mean"),
                "best_val_count": self._validated.get(best, {}).get("val_count"),
                "seed_val_mean": seed.get("val_mean"),
                "num_candidates": len(self._registered),
                "iterations": self._iterations,
            }
        else:
            return None
        best_id = str(facts.get("best_candidate_id"))
        facts["best_texts"] = self._registered.get(best_id, {}).get("texts")
        facts.setdefault("best_val_count", self._validated.get(best_id, {}).get("val_count"))
        facts["seed_val_count"] = self._validated.get("c0000", {}).get("val_count")
        return facts

    def _on_frontier_updated(self, data: Mapping[str, Any]) -> None:
        self._frontier = dict(data)

    def _on_proposal_completed(self, data: Mapping[str, Any]) -> None:
        row = self._take_pending(data)
        row.update(new_text=data.get("text"), outcome="pending")
        self._proposals[str(data["proposal_id"])] = row

    def _on_proposal_failed(self, data: Mapping[str, Any]) -> None:
        row = self._take_pending(data)
        row.update(new_text=None, outcome=f"{data.get('kind')}: {data.get('reason')}")
        self.ledgers.proposals.append(row)

    def _on_candidate_accepted(self, data: Mapping[str, Any]) -> None:
        self._settle(data, "accepted", candidate_id=data.get("candidate_id"))

    def _on_candidate_rejected(self, data: Mapping[str, Any]) -> None:
        self._settle(data, "rejected")

    def _on_candidate_duplicate(self, data: Mapping[str, Any]) -> None:
        self._settle(data, f"duplicate: {data.get('reason')}")

    def _on_candidate_dropped(self, data: Mapping[str, Any]) -> None:
        # racing names the child by its eval id only; every proposal still open belongs
        # to this iteration's child, so they share its fate
        outcome = f"dropped: clearly worse than {data.get('rival_id')} at stage {data.get('stage')}"
        for row in self._proposals.values():
            row["outcome"] = outcome
            self.ledgers.proposals.append(row)
        self._proposals.clear()

    def _take_pending(self, data: Mapping[str, Any]) -> dict[str, Any]:
        call = self._pending_proposals.popleft() if self._pending_proposals else {}
        return {
            "proposal_id": data["proposal_id"],
            "iteration": data.get("iteration"),
            "parent_id": data.get("parent_id"),
            "component": data.get("component"),
            "prompt": call.get("prompt"),
            "raw_output": call.get("raw_output"),
            "usage": data.get("usage"),
            "cost_usd": (data.get("usage") or {}).get("cost_usd"),
            "cache_action": call.get("cache_action"),
        }

    def _settle(self, data: Mapping[str, Any], outcome: str, **extra: Any) -> None:
        for proposal_id in data.get("proposal_ids", []):
            row = self._proposals.pop(str(proposal_id), None)
            if row is not None:
                row.update(outcome=outcome, **extra)
                self.ledgers.proposals.append(row)

    def flush_unsettled(self) -> None:
        """Proposals whose child was never evaluated (the run ended mid-iteration)."""
        for row in self._proposals.values():
            row["outcome"] = "not_evaluated"
            self.ledgers.proposals.append(row)
        self._proposals.clear()

    # -- CheckpointSink --------------------------------------------------------------
    def save_checkpoint(self, snapshot: Mapping[str, Any]) -> None:
        # candidates reach the disk before a frontier that names them
        offsets = self.ledgers.flush()
        self.write_frontier()
        runner = self._runner_state()
        if runner.get("cache_profile") is not None:
            self.run_dir.write_json("cache_profile.json", runner["cache_profile"])
        self.run_dir.write_json(
            "checkpoint.json",
            {
                "format": CHECKPOINT_FORMAT,
                "engine": dict(snapshot),
                "ledgers": offsets,
                "next_seq": self.writer.next_seq,
                "runner": runner,
            },
        )
        self.last_checkpoint_index = int(snapshot.get("checkpoints_taken", 0))

    def write_frontier(self) -> None:
        if self._frontier is not None:
            self.run_dir.write_json("frontier.json", self._frontier)

    # -- wrappers for the engine's evaluator and proposer ------------------------------
    def recording_evaluator(self, inner: Evaluator) -> Evaluator:
        return _RecordingEvaluator(inner, self)

    def recording_proposer(self, inner: Proposer, boundary: str) -> Proposer:
        return _RecordingProposer(inner, self, boundary)


class _RecordingEvaluator:
    def __init__(self, inner: Evaluator, recorder: RunRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        results = await self.inner.evaluate(request)
        for result in results:
            action = result.meta.get("cache_action")
            self.recorder.spend.add("container.rollout", result.usage, live=action != "hit")
            self.recorder.ledgers.rollouts.append(
                {
                    "candidate_id": request.candidate_id,
                    "example_id": result.example_id,
                    "split": request.split,
                    "score": result.score,
                    "status": result.status,
                    "feedback": result.feedback,
                    "output": result.output,
                    "objectives": dict(result.objectives),
                    "usage": result.usage.to_dict(),
                    "error": result.error,
                    "cache_action": action,
                    "latency_ms": result.meta.get("latency_ms"),
                    "attempts": result.meta.get("attempts"),
                }
            )
        return results


class _RecordingProposer:
    def __init__(self, inner: Proposer, recorder: RunRecorder, boundary: str) -> None:
        self.inner = inner
        self.recorder = recorder
        self.boundary = boundary

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        pending = self.recorder._pending_proposals
        try:
            result = await self.inner.propose(request)
        except ProposerError as error:
            pending.append({"prompt": None, "raw_output": None, "error": error.one_line()})
            raise
        action = result.meta.get("cache_action")
        self.recorder.spend.add(self.boundary, result.usage, live=action != "hit")
        pending.append(
            {"prompt": result.prompt, "raw_output": result.raw_output, "cache_action": action}
        )
        return result
