"""Rebuild a run from its event feed alone, and check the run's artifacts against it.

The feed is the run's source of truth (docs/events.md): candidates, validation scores,
the frontier, the best candidate and the budget can all be folded out of it. Replaying
a feed is how a run is audited after the fact, and `check_artifacts` is how the other
files of the run directory are shown to agree with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.artifacts.compare import MISSING, differing_keys
from gepa_cli.artifacts.ledger import iter_jsonl
from gepa_cli.errors import EventCompareError

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


@dataclass
class ReplayFrontier:
    frontier_type: str | None
    frontier: dict[str, list[str]]
    best_scores: dict[str, float]
    best_candidate_id: str
    best_val_mean: float


@dataclass
class TimelineEntry:
    seq: int
    type: str
    iteration: int | None
    text: str


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
    frontier: ReplayFrontier | None = None
    budget: dict[str, Any] | None = None
    finished: dict[str, Any] | None = None
    heldout: list[dict[str, Any]] = field(default_factory=list)
    event_counts: dict[str, int] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def stopped_by(self) -> str | None:
        return None if self.finished is None else self.finished.get("stopped_by")

    def candidate(self, candidate_id: str | None) -> ReplayCandidate | None:
        return next((c for c in self.candidates if c.id == candidate_id), None)

    @property
    def best_candidate(self) -> ReplayCandidate | None:
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
            "frontier": asdict(self.frontier) if self.frontier is not None else None,
            "best_candidate": asdict(best) if best is not None else None,
            "budget": self.budget,
            "heldout": self.heldout,
            "run_finished": self.finished,
            "event_counts": dict(sorted(self.event_counts.items())),
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


class _Folder:
    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.counts: Counter[str] = Counter()
        self.line = 0
        self.best: tuple[str, float] | None = None
        self.iteration: int | None = None

    def fold(self, line: int, event: Mapping[str, Any]) -> None:
        r, self.line = self.replay, line
        seq, kind, data = event.get("seq"), event.get("type"), event.get("data")
        if not isinstance(seq, int) or not isinstance(kind, str) or not isinstance(data, dict):
            raise self.error("is not an event (needs an integer seq, a type and a data object)")
        if seq != r.events:
            raise self.error(
                f"has seq {seq} where {r.events} was expected (the feed is not contiguous)"
            )
        if r.run_id is None and isinstance(event.get("run_id"), str):
            r.run_id = event["run_id"]
        r.events += 1
        self.counts[kind] += 1
        r.event_counts = dict(self.counts)
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if isinstance(data.get("iteration"), int):
            # validations, frontier updates and heldout carry no iteration of their own
            self.iteration = data["iteration"]
        text = handler(data) if handler is not None else None
        if text:
            r.timeline.append(TimelineEntry(seq, kind, self.iteration, text))

    def error(self, what: str) -> EventCompareError:
        path = self.replay.path
        return EventCompareError(
            f"{path} line {self.line} {what}", hint=FIX_FEED, file=path, line=self.line
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
        return f"{cid} validated: val_mean {_num(val_mean)} on {val_count}"

    def _frontier_updated(self, data: Mapping[str, Any]) -> str | None:
        frontier, best_scores, best_id, best_mean = self.need(
            data, "frontier", "best_scores", "best_candidate_id", "best_val_mean"
        )
        self.replay.frontier = ReplayFrontier(
            data.get("frontier_type"), dict(frontier), dict(best_scores), best_id, best_mean
        )
        previous, self.best = self.best, (best_id, best_mean)
        if previous is not None and previous == self.best:
            return None
        was = "" if previous is None else f" (was {previous[0]} {_num(previous[1])})"
        return f"new best {best_id}: val_mean {_num(best_mean)}{was}"

    def _budget_updated(self, data: Mapping[str, Any]) -> None:
        self.replay.budget = {k: v for k, v in data.items() if k not in ("iteration", "limits")}

    def _run_finished(self, data: Mapping[str, Any]) -> str:
        (stopped_by,) = self.need(data, "stopped_by")
        self.replay.finished = dict(data)
        if isinstance(data.get("budget"), dict):
            self.replay.budget = dict(data["budget"])
        error = f": {data['error']}" if data.get("error") else ""
        best = f"best {data.get('best_candidate_id')} {_num(data.get('best_val_mean'))}"
        return f"run finished: stopped_by {stopped_by}{error}; {best}"

    def _iteration_started(self, data: Mapping[str, Any]) -> str:
        kind, parent = data.get("kind"), data.get("parent_id")
        if kind == "merge":
            return f"merge iteration from {parent}"
        minibatch = ", ".join(map(str, data.get("minibatch", [])))
        components = ", ".join(map(str, data.get("components", [])))
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
        return f"accepted as {data.get('candidate_id')}: {_verdict(data)}"

    def _candidate_rejected(self, data: Mapping[str, Any]) -> str:
        return f"rejected: {_verdict(data)}"

    def _candidate_duplicate(self, data: Mapping[str, Any]) -> str:
        pids = ", ".join(map(str, data.get("proposal_ids", [])))
        return f"{pids} duplicate ({data.get('reason')}, {data.get('content_hash')})"

    def _merge_proposed(self, data: Mapping[str, Any]) -> str:
        parents = " + ".join(map(str, data.get("parent_ids", [])))
        return (
            f"{data.get('merge_id')} proposed: {parents} over {data.get('ancestor_id')}, "
            f"subsample {len(data.get('subsample') or [])}"
        )

    def _merge_accepted(self, data: Mapping[str, Any]) -> str:
        return f"{data.get('merge_id')} accepted as {data.get('candidate_id')}: {_merge(data)}"

    def _merge_rejected(self, data: Mapping[str, Any]) -> str:
        return f"{data.get('merge_id')} rejected: {_merge(data)}"

    def _heldout_completed(self, data: Mapping[str, Any]) -> str:
        self.replay.heldout.append({"outcome": "completed", **data})
        roles = "+".join(map(str, data.get("roles", [])))
        cid, count = data.get("candidate_id"), data.get("count")
        return f"heldout {cid} ({roles}): mean {_num(data.get('mean'))} on {count}"

    def _heldout_skipped(self, data: Mapping[str, Any]) -> str:
        self.replay.heldout.append({"outcome": "skipped", **data})
        roles = "+".join(map(str, data.get("roles", [])))
        return f"heldout {data.get('candidate_id')} ({roles}) skipped: {data.get('reason')}"


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)


def _verdict(data: Mapping[str, Any]) -> str:
    pids = ", ".join(map(str, data.get("proposal_ids", [])))
    return (
        f"{pids} on {data.get('parent_id')}, minibatch sum "
        f"{_num(data.get('parent_sum'))} -> {_num(data.get('child_sum'))} ({data.get('rule')})"
    )


def _merge(data: Mapping[str, Any]) -> str:
    sums = ", ".join(_num(x) for x in data.get("parent_sums", []))
    return f"subsample sum {_num(data.get('merge_sum'))} vs parents {sums}"


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


def format_timeline(replay: Replay) -> list[str]:
    """One line per meaningful event: ``seq  it N  text`` (budget and checkpoints left out)."""
    lines = []
    for entry in replay.timeline:
        it = f"it {entry.iteration:>3}" if entry.iteration is not None else " " * 6
        lines.append(f"{entry.seq:>6}  {it}  {entry.text}")
    return lines


def format_summary(replay: Replay) -> list[str]:
    counts = replay.event_counts
    origins = Counter(c.origin for c in replay.candidates)
    state = f"finished, stopped_by {replay.stopped_by}" if replay.finished else "no run.finished"
    lines = [
        f"run {replay.run_id}: {replay.events} events, {state}",
        f"candidates: {len(replay.candidates)} ("
        + ", ".join(f"{name} {n}" for name, n in sorted(origins.items()))
        + ")",
        "proposals: {} completed, {} failed; children: {} accepted, {} rejected, {} duplicate; "
        "merges: {} accepted, {} rejected".format(
            *(
                counts.get(kind, 0)
                for kind in (
                    "proposal.completed",
                    "proposal.failed",
                    "candidate.accepted",
                    "candidate.rejected",
                    "candidate.duplicate",
                    "merge.accepted",
                    "merge.rejected",
                )
            )
        ),
    ]
    best, seed = replay.best_candidate, replay.candidate("c0000")
    if best is not None:
        seed_mean = f" (seed {_num(seed.val_mean)})" if seed is not None else ""
        lines.append(
            f"best: {best.id} val_mean {_num(best.val_mean)} on {best.val_count}{seed_mean}"
        )
    for row in replay.heldout:
        roles = "+".join(map(str, row.get("roles", [])))
        if row["outcome"] == "completed":
            lines.append(f"heldout {roles}: {row.get('candidate_id')} mean {_num(row.get('mean'))}")
        else:
            lines.append(f"heldout {roles}: skipped ({row.get('reason')})")
    budget = replay.budget or {}
    rollouts = budget.get("rollouts") or {}
    if budget:
        by_role = ", ".join(f"{k} {v}" for k, v in rollouts.items() if k != "total")
        cost = budget.get("cost_usd")
        lines.append(
            f"budget: rollouts {rollouts.get('total')} ({by_role}), proposals "
            f"{budget.get('proposals')}, tokens {budget.get('tokens')}, cost_usd "
            + (f"{cost:.4f}" if isinstance(cost, (int, float)) else str(cost))
            + ("" if budget.get("cost_known", True) else " (partly unknown)")
        )
    if replay.frontier is not None:
        members = sorted({c for ids in replay.frontier.frontier.values() for c in ids})
        lines.append(
            f"frontier ({replay.frontier.frontier_type}): {len(replay.frontier.frontier)} keys, "
            f"candidates {' '.join(members)}"
        )
    if replay.partial_last_line is not None:
        lines.append(
            f"note: line {replay.partial_last_line} is half-written (a running or crashed run); "
            "it was left out"
        )
    return lines


# -- checking the run's other artifacts against the feed ---------------------------------


@dataclass(frozen=True)
class Disagreement:
    artifact: str
    field: str
    feed: Any
    value: Any

    def line(self) -> str:
        feed = "<absent>" if self.feed is MISSING else _show(self.feed)
        value = "<absent>" if self.value is MISSING else _show(self.value)
        return f"{self.artifact} {self.field}: feed {feed} vs artifact {value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "field": self.field,
            "feed": None if self.feed is MISSING else self.feed,
            "artifact_value": None if self.value is MISSING else self.value,
        }


@dataclass
class CheckReport:
    checked: list[str] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.disagreements

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


def _show(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= 160 else text[:157] + "..."


def check_artifacts(replay: Replay, run_dir: str | Path | None = None) -> CheckReport:
    """Compare the replayed state with candidates.jsonl, frontier.json, manifest.json
    (when present) and rollouts.jsonl in ``run_dir`` (default: the feed's directory)."""
    root = Path(run_dir) if run_dir is not None else Path(replay.path).parent
    report = CheckReport()

    def diff(artifact: str, prefix: str, feed: Any, value: Any) -> None:
        # a list is shown whole: "[c0005, c0006] vs [c0001]" reads better than per index
        keys = dict.fromkeys(key.split("[")[0] for key in differing_keys(feed, value, prefix))
        for key in keys:
            report.disagreements.append(
                Disagreement(artifact, key, _at(feed, key, prefix), _at(value, key, prefix))
            )

    rows = [row for _, row in iter_jsonl(root / "candidates.jsonl", error=EventCompareError)]
    report.checked.append("candidates.jsonl")
    validated = [c for c in replay.candidates if c.val_mean is not None]
    feed_ids, row_ids = [c.id for c in validated], [r.get("candidate_id") for r in rows]
    for cid in feed_ids:
        if cid not in row_ids:
            report.disagreements.append(Disagreement("candidates.jsonl", cid, "validated", MISSING))
    for rid in row_ids:
        if rid not in feed_ids:
            report.disagreements.append(Disagreement("candidates.jsonl", str(rid), MISSING, "row"))
    if set(feed_ids) == set(row_ids) and feed_ids != row_ids:
        diff("candidates.jsonl", "order", feed_ids, row_ids)
    by_id = {row.get("candidate_id"): row for row in rows}
    for candidate in validated:
        row = by_id.get(candidate.id)
        if row is None:
            continue
        for key in ("val_mean", "val_count", "texts", "parents", "origin", "content_hash"):
            diff("candidates.jsonl", f"{candidate.id}.{key}", getattr(candidate, key), row.get(key))

    frontier_path = root / "frontier.json"
    if replay.frontier is not None or frontier_path.exists():
        report.checked.append("frontier.json")
        feed = asdict(replay.frontier) if replay.frontier is not None else MISSING
        if feed is MISSING or not frontier_path.exists():
            value = "present" if frontier_path.exists() else MISSING
            report.disagreements.append(
                Disagreement(
                    "frontier.json", "(file)", MISSING if feed is MISSING else "a frontier", value
                )
            )
        else:
            diff("frontier.json", "", feed, _read_json(frontier_path))

    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        report.checked.append("manifest.json")
        manifest = _read_json(manifest_path)
        best = replay.best_candidate
        finished = replay.finished or {}
        mbest = manifest.get("best_candidate") or {}
        mbudget = manifest.get("budget") or {}
        budget = replay.budget or {}
        pairs: list[tuple[str, Any, Any]] = [
            ("best_candidate.id", best.id if best else None, mbest.get("id")),
            ("best_candidate.val_mean", best.val_mean if best else None, mbest.get("val_mean")),
        ]
        if replay.finished is not None:
            # a run that failed or was killed before run.finished has no feed-side answer
            pairs += [
                ("stopped_by", replay.stopped_by, manifest.get("stopped_by")),
                ("num_candidates", finished.get("num_candidates"), manifest.get("num_candidates")),
            ]
        for key in ("rollouts", "proposals", "tokens", "cost_usd"):
            pairs.append((f"budget.{key}", budget.get(key), mbudget.get(key)))
        for name, feed_value, value in pairs:
            diff("manifest.json", name, feed_value, value)

    rollouts = sum(1 for _ in iter_jsonl(root / "rollouts.jsonl", error=EventCompareError))
    report.checked.append("rollouts.jsonl")
    total = ((replay.budget or {}).get("rollouts") or {}).get("total", 0)
    diff("rollouts.jsonl", "rows", total, rollouts)
    return report


def _at(value: Any, dotted: str, prefix: str) -> Any:
    """The part of ``value`` a path from `differing_keys` points at (for the message)."""
    rest = dotted[len(prefix) :].lstrip(".") if prefix and dotted.startswith(prefix) else dotted
    if rest in ("", "(line)"):
        return value
    for part in rest.replace("[", ".[").split("."):
        if value is MISSING:
            return MISSING
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else MISSING
        elif part:
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
    return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise EventCompareError(
            f"cannot read {path}: {exc.strerror}", hint="check the run directory", file=str(path)
        ) from None
    except orjson.JSONDecodeError as exc:
        raise EventCompareError(
            f"{path} is not valid JSON ({exc})",
            hint="restore the file from the run, or rerun the run",
            file=str(path),
        ) from None
    if not isinstance(value, dict):
        raise EventCompareError(
            f"{path} is not a JSON object", hint="restore the file", file=str(path)
        )
    return value
