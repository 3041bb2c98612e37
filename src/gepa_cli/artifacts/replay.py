"""Rebuild a run from its event feed alone.

The feed is the run's source of truth (docs/events.md): candidates, validation scores,
the frontier, the best candidate and the budget can all be folded out of it. Replaying
a feed is how a run is audited after the fact; `check_artifacts` (replay_check.py) is
how the other files of the run directory are shown to agree with it, and the timeline
and summary (timeline.py) are how it reads to a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gepa_cli.artifacts.ledger import iter_jsonl
from gepa_cli.artifacts.replay_check import CheckReport, Disagreement, check_artifacts
from gepa_cli.artifacts.replay_session import SessionTimeline
from gepa_cli.artifacts.schema import EventLine, FrontierDoc
from gepa_cli.artifacts.session_fold import SESSION_CREATED, FoldError, SessionFold
from gepa_cli.artifacts.timeline import (
    child_verdict,
    format_summary,
    format_timeline,
    merge_verdict,
    num,
)
from gepa_cli.errors import EventCompareError

__all__ = [
    "BestChange",
    "CheckReport",
    "Decision",
    "Disagreement",
    "Replay",
    "ReplayCandidate",
    "TimelineEntry",
    "check_artifacts",
    "format_summary",
    "format_timeline",
    "replay_events",
]

# the events that settle the fate of a child or a merge (folded into `Replay.decisions`)
DECISIONS = frozenset(
    {
        "candidate.accepted",
        "candidate.rejected",
        "candidate.duplicate",
        "candidate.dropped",
        "merge.accepted",
        "merge.rejected",
    }
)
FIX_FEED = "the feed must be an events.jsonl written by a run (one event a line, seq from 0)"


@dataclass
class ReplayCandidate:
    id: str
    parents: list[str]
    origin: str
    content_hash: str
    texts: dict[str, str]
    iteration: int | None = None
    proposal_id: str | None = None
    val_mean: float | None = None
    val_count: int | None = None
    objective_means: dict[str, float] = field(default_factory=dict)
    # example id -> score of its full validation (memo hits included)
    val_scores: dict[str, float] = field(default_factory=dict)
    # rollouts the run had spent when the candidate's validation completed
    validated_at: int | None = None


@dataclass
class TimelineEntry:
    seq: int
    type: str
    iteration: int | None
    text: str
    rollouts: int = 0  # rollouts spent when the event happened


@dataclass
class BestChange:
    """A ``frontier.updated`` that changed the best candidate or its mean."""

    seq: int
    rollouts: int
    candidate_id: str
    val_mean: float


@dataclass
class Decision:
    """What became of one child or merge: accepted, rejected, duplicate or dropped."""

    seq: int
    type: str  # the event type, e.g. candidate.rejected or merge.accepted
    iteration: int | None
    ids: list[str]  # the proposal ids combined into the child, or the merge id
    parent_ids: list[str]
    candidate_id: str | None
    verdict: str  # why, in one line (minibatch sums, subsample sums, reason)


@dataclass
class Replay:
    """The state of a run as its feed tells it."""

    path: str
    run_id: str | None = None
    events: int = 0
    # line number of a half-written last line (a run still writing, or one that crashed)
    partial_last_line: int | None = None
    started: dict[str, Any] | None = None
    candidates: list[ReplayCandidate] = field(default_factory=list)
    # the last frontier.updated: exactly what frontier.json holds
    frontier: FrontierDoc | None = None
    budget: dict[str, Any] | None = None
    finished: dict[str, Any] | None = None
    heldout: list[dict[str, Any]] = field(default_factory=list)
    event_counts: dict[str, int] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    # counted rollouts so far (the sum over evaluation.completed and .discarded)
    rollouts_spent: int = 0
    best_history: list[BestChange] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    # an online session's feed (it starts with session.created) folds into this too
    session: SessionFold | None = None

    @property
    def stopped_by(self) -> str | None:
        if self.session is not None:
            return self.session.stopped_by
        return None if self.finished is None else self.finished.get("stopped_by")

    def candidate(self, candidate_id: str | None) -> ReplayCandidate | None:
        return next((c for c in self.candidates if c.id == candidate_id), None)

    @property
    def best_candidate(self) -> ReplayCandidate | None:
        if self.session is not None:
            # the incumbent: the seed until a challenger is promoted over it
            return self.candidate(self.session.incumbent_id)
        if self.frontier is not None:
            return self.candidate(self.frontier.best_candidate_id)
        return self.candidate((self.finished or {}).get("best_candidate_id"))

    def to_dict(self) -> dict[str, Any]:
        best = self.best_candidate
        return {
            "path": self.path,
            "run_id": self.run_id,
            "events": self.events,
            "partial_last_line": self.partial_last_line,
            "finished": self.finished is not None,
            "stopped_by": self.stopped_by,
            "candidates": [asdict(c) for c in self.candidates],
            "frontier": self.frontier.dump() if self.frontier is not None else None,
            "best_candidate": asdict(best) if best is not None else None,
            "budget": self.budget,
            "heldout": self.heldout,
            "rollouts_spent": self.rollouts_spent,
            "best_history": [asdict(b) for b in self.best_history],
            "decisions": [asdict(d) for d in self.decisions],
            "run_finished": self.finished,
            "event_counts": dict(sorted(self.event_counts.items())),
            "session": self.session.summary() if self.session is not None else None,
        }


def replay_events(path: str | Path) -> Replay:
    """Fold an events.jsonl feed into a `Replay`.

    Raises `EventCompareError` (naming the file and line) for a line that is not JSON,
    an event without its fields, or a ``seq`` that is not contiguous from 0.
    """
    path = Path(path)
    replay = Replay(path=str(path))
    folder = _Folder(replay)
    last_line = 0
    for number, event in iter_jsonl(path, error=EventCompareError):
        last_line = number
        folder.fold(number, event)
    replay.partial_last_line = _partial_last_line(path, last_line)
    return replay


class _Folder(SessionTimeline):
    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.counts: Counter[str] = Counter()
        self.line = 0
        self.best: tuple[str, float] | None = None
        self.iteration: int | None = None

    def fold(self, line: int, event: Mapping[str, Any]) -> None:
        r, self.line = self.replay, line
        try:
            parsed = EventLine.model_validate(event, strict=True)
        except ValidationError:
            raise self.error(
                "is not an event (needs an integer seq, a type and a data object)"
            ) from None
        seq, kind, data = parsed.seq, parsed.type, parsed.data
        if seq != r.events:
            raise self.error(
                f"has seq {seq} where {r.events} was expected (the feed is not contiguous)"
            )
        if r.run_id is None and parsed.run_id is not None:
            r.run_id = parsed.run_id
        r.events += 1
        self.counts[kind] += 1
        r.event_counts = dict(self.counts)
        if kind == SESSION_CREATED and r.events == 1:
            r.session = SessionFold()
        if r.session is not None:
            try:
                r.session.apply(kind, data)
            except FoldError as exc:
                raise self.error(str(exc)) from None
            r.budget = r.session.budget()
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if isinstance(data.get("iteration"), int):
            # validations, frontier updates and heldout carry no iteration of their own
            self.iteration = data["iteration"]
        text = handler(data) if handler is not None else None
        if text:
            r.timeline.append(TimelineEntry(seq, kind, self.iteration, text, r.rollouts_spent))
        if kind in DECISIONS:
            r.decisions.append(self.decision(seq, kind, data))

    def error(self, what: str) -> EventCompareError:
        path = self.replay.path
        return EventCompareError(
            f"{path} line {self.line} {what}", hint=FIX_FEED, file=path, line=self.line
        )

    def decision(self, seq: int, kind: str, data: Mapping[str, Any]) -> Decision:
        merge = kind.startswith("merge.")
        ids = [data.get("merge_id")] if merge else data.get("proposal_ids") or [data.get("eval_id")]
        parents = data.get("parent_ids") if "parent_ids" in data else [data.get("parent_id")]
        if kind == "candidate.duplicate":
            verdict = f"{data.get('reason')} ({data.get('content_hash')})"
        elif kind == "candidate.dropped":
            verdict = (
                f"racing stage {data.get('stage')}: val_mean {num(data.get('val_mean'))} on "
                f"{data.get('val_count')}, clearly worse than {data.get('rival_id')}"
            )
        else:
            verdict = merge_verdict(data) if merge else child_verdict(data)
        return Decision(
            seq=seq,
            type=kind,
            iteration=self.iteration,
            ids=[str(i) for i in ids if i is not None],
            parent_ids=[str(p) for p in parents or [] if p is not None],
            candidate_id=data.get("candidate_id"),
            verdict=verdict,
        )

    def need(self, data: Mapping[str, Any], *keys: str) -> list[Any]:
        absent = [key for key in keys if key not in data]
        if absent:
            raise self.error(f"lacks data.{absent[0]}")
        return [data[key] for key in keys]

    # -- handlers: fold the event into the replay; return a timeline line or None ------
    def _run_started(self, data: Mapping[str, Any]) -> str:
        self.replay.started = dict(data)
        modules = ", ".join(map(str, data.get("target_modules", [])))
        sizes = ", ".join(
            f"{name} {len(data.get(key) or [])}"
            for name, key in (
                ("train", "train_ids"),
                ("val", "val_ids"),
                ("heldout", "heldout_ids"),
            )
        )
        return f"run started: modules {modules}; {sizes}; rng seed {data.get('rng_seed')}"

    def _candidate_registered(self, data: Mapping[str, Any]) -> str:
        cid, content_hash, parents, origin, texts = self.need(
            data, "candidate_id", "content_hash", "parents", "origin", "texts"
        )
        if self.replay.candidate(cid) is not None:
            raise self.error(f"registers {cid} a second time")
        self.replay.candidates.append(
            ReplayCandidate(
                id=cid,
                parents=list(parents),
                origin=origin,
                content_hash=content_hash,
                texts=dict(texts),
                iteration=data.get("iteration"),
                proposal_id=data.get("proposal_id"),
            )
        )
        via = f" from {', '.join(parents)}" if parents else ""
        return f"{cid} registered ({origin}{via}, {content_hash})"

    def _candidate_validated(self, data: Mapping[str, Any]) -> str:
        cid, val_mean, val_count = self.need(data, "candidate_id", "val_mean", "val_count")
        candidate = self.replay.candidate(cid)
        if candidate is None:
            raise self.error(f"validates {cid}, which no candidate.registered event introduced")
        candidate.val_mean, candidate.val_count = val_mean, val_count
        candidate.objective_means = dict(data.get("objective_means") or {})
        candidate.validated_at = self.replay.rollouts_spent
        return f"{cid} validated: val_mean {num(val_mean)} on {val_count}"

    def _frontier_updated(self, data: Mapping[str, Any]) -> str | None:
        self.need(data, "frontier", "best_scores", "best_candidate_id", "best_val_mean")
        try:
            self.replay.frontier = FrontierDoc.model_validate(data)
        except ValidationError as exc:
            raise self.error(
                f"has a frontier.updated that is not a frontier ({exc.errors()[0]['msg']})"
            ) from None
        best_id, best_mean = (
            self.replay.frontier.best_candidate_id,
            self.replay.frontier.best_val_mean,
        )
        previous, self.best = self.best, (best_id, best_mean)
        if previous is not None and previous == self.best:
            return None
        self.replay.best_history.append(
            BestChange(self.replay.events - 1, self.replay.rollouts_spent, best_id, best_mean)
        )
        was = "" if previous is None else f" (was {previous[0]} {num(previous[1])})"
        return f"new best {best_id}: val_mean {num(best_mean)}{was}"

    def _evaluation_completed(self, data: Mapping[str, Any]) -> None:
        counted = data.get("rollouts")
        self.replay.rollouts_spent += counted if isinstance(counted, int) else 0
        candidate = self.replay.candidate(data.get("eval_id"))
        if data.get("purpose") == "validation" and candidate is not None:
            candidate.val_scores = {
                str(r["example_id"]): float(r["score"])
                for r in data.get("results") or []
                if isinstance(r, Mapping) and isinstance(r.get("score"), (int, float))
            }

    def _evaluation_discarded(self, data: Mapping[str, Any]) -> None:
        # work fetched ahead that the iteration did not use: charged all the same
        counted = data.get("rollouts")
        self.replay.rollouts_spent += counted if isinstance(counted, int) else 0

    def _budget_updated(self, data: Mapping[str, Any]) -> None:
        self.replay.budget = {k: v for k, v in data.items() if k not in ("iteration", "limits")}

    def _run_finished(self, data: Mapping[str, Any]) -> str:
        (stopped_by,) = self.need(data, "stopped_by")
        self.replay.finished = dict(data)
        if isinstance(data.get("budget"), dict):
            self.replay.budget = dict(data["budget"])
        error = f": {data['error']}" if data.get("error") else ""
        best = f"best {data.get('best_candidate_id')} {num(data.get('best_val_mean'))}"
        return f"run finished: stopped_by {stopped_by}{error}; {best}"

    def _iteration_started(self, data: Mapping[str, Any]) -> str:
        kind, parent = data.get("kind"), data.get("parent_id")
        if kind == "merge":
            return f"merge iteration from {parent}"
        minibatch = ", ".join(map(str, data.get("minibatch", [])))
        components = ", ".join(map(str, data.get("components", [])))
        chain = data.get("chain")
        if isinstance(chain, Mapping):
            parent = f"the tip of a {chain.get('length')}-edit chain from {parent}"
        return f"reflection on {parent} [{components}], minibatch {minibatch}"

    def _iteration_skipped(self, data: Mapping[str, Any]) -> str:
        return f"skipped on {data.get('parent_id')}: {data.get('reason')}"

    def _proposal_completed(self, data: Mapping[str, Any]) -> str:
        text = str(data.get("text") or "")
        return f"{data.get('proposal_id')} completed ({data.get('component')}, {len(text)} chars)"

    def _proposal_failed(self, data: Mapping[str, Any]) -> str:
        pid, component = data.get("proposal_id"), data.get("component")
        return f"{pid} failed ({component}): {data.get('kind')}: {data.get('reason')}"

    def _candidate_accepted(self, data: Mapping[str, Any]) -> str:
        return f"accepted as {data.get('candidate_id')}: {child_verdict(data)}"

    def _candidate_rejected(self, data: Mapping[str, Any]) -> str:
        return f"rejected: {child_verdict(data)}"

    def _candidate_duplicate(self, data: Mapping[str, Any]) -> str:
        pids = ", ".join(map(str, data.get("proposal_ids", [])))
        return f"{pids} duplicate ({data.get('reason')}, {data.get('content_hash')})"

    def _validation_stage(self, data: Mapping[str, Any]) -> str | None:
        if data.get("decision") == "continue":
            return None  # the stage that ends the race (drop or pass) tells the story
        return (
            f"{data.get('eval_id')} racing stage {data.get('stage')}/{data.get('stages')}: "
            f"val_mean {num(data.get('val_mean'))} on {data.get('examples')} -> "
            f"{data.get('decision')}"
        )

    def _chain_extended(self, data: Mapping[str, Any]) -> str:
        return (
            f"chain extended to {data.get('length')} edits (validated at "
            f"{data.get('target')}): {child_verdict(data)}"
        )

    def _proposal_rebased(self, data: Mapping[str, Any]) -> str:
        ids = ", ".join(str(p) for p in data.get("proposal_ids") or [])
        return (
            f"{ids} rebased from {data.get('parent_id')} onto {data.get('onto')}: "
            f"{data.get('content_hash')} -> {data.get('rebased_hash')}"
        )

    def _chain_abandoned(self, data: Mapping[str, Any]) -> str:
        return (
            f"chain of {data.get('length')} edits left unvalidated, no room in the budget "
            f"({data.get('reason')}): {data.get('content_hash')}"
        )

    def _candidate_dropped(self, data: Mapping[str, Any]) -> str:
        return (
            f"{data.get('eval_id')} dropped at stage {data.get('stage')}: val_mean "
            f"{num(data.get('val_mean'))} on {data.get('val_count')}, clearly worse than "
            f"{data.get('rival_id')}"
        )

    def _merge_proposed(self, data: Mapping[str, Any]) -> str:
        parents = " + ".join(map(str, data.get("parent_ids", [])))
        return (
            f"{data.get('merge_id')} proposed: {parents} over {data.get('ancestor_id')}, "
            f"subsample {len(data.get('subsample') or [])}"
        )

    def _merge_accepted(self, data: Mapping[str, Any]) -> str:
        return (
            f"{data.get('merge_id')} accepted as {data.get('candidate_id')}: {merge_verdict(data)}"
        )

    def _merge_rejected(self, data: Mapping[str, Any]) -> str:
        return f"{data.get('merge_id')} rejected: {merge_verdict(data)}"

    def _heldout_completed(self, data: Mapping[str, Any]) -> str:
        self.replay.heldout.append(
            {"outcome": "completed", **data, "at_rollouts": self.replay.rollouts_spent}
        )
        roles = "+".join(map(str, data.get("roles", [])))
        cid, count = data.get("candidate_id"), data.get("count")
        return f"heldout {cid} ({roles}): mean {num(data.get('mean'))} on {count}"

    def _heldout_skipped(self, data: Mapping[str, Any]) -> str:
        self.replay.heldout.append({"outcome": "skipped", **data})
        roles = "+".join(map(str, data.get("roles", [])))
        return f"heldout {data.get('candidate_id')} ({roles}) skipped: {data.get('reason')}"


def _partial_last_line(path: Path, last_parsed: int) -> int | None:
    """The number of a half-written last line, which `iter_jsonl` skips silently."""
    newlines, last = 0, b""
    with open(path, "rb") as handle:
        # chunked: a feed can be far larger than anything worth holding in memory
        while chunk := handle.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    if last in (b"", b"\n"):
        return None
    return newlines + 1 if newlines + 1 != last_parsed else None
