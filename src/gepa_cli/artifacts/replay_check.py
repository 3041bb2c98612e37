"""Check a run's other artifacts (candidates, frontier, manifest, rollouts) against
what its feed says, field by field, so a disagreement names the file and the field.

An online session's files grow while a service holds it, and the feed is read before
the other files. Its ledgers are compared with the rows the feed accounts for (each row
is written just before its event): rows after those belong to events written since the
feed was read when the session is held by a live process, and are a crash's uncommitted
rows otherwise (the service cuts them when it opens the session again). Likewise its
frontier.json (written just before its frontier.updated event) may be one decision
ahead of the feed while it is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.compare import MISSING, differing_keys
from gepa_cli.artifacts.liveness import lock_status
from gepa_cli.artifacts.schema import (
    CandidateRow,
    FrontierDoc,
    Manifest,
    RewardRow,
    RolloutRow,
    read_document,
    read_rows,
)
from gepa_cli.artifacts.session_fold import ROWS_OF
from gepa_cli.errors import EventCompareError

if TYPE_CHECKING:
    from gepa_cli.artifacts.replay import Replay

T = TypeVar("T")


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

    session = replay.session
    live = session is not None and lock_status(root) == "alive"

    def committed(name: str, rows: Iterable[T]) -> Iterator[T]:
        """The rows of ``name``; of an online session, those its feed accounts for."""
        if session is None:
            yield from rows
            return
        accounted = sum(replay.event_counts.get(kind, 0) for kind in ROWS_OF[name])
        seen = 0
        for row in rows:
            seen += 1
            if seen <= accounted:
                yield row
        if seen > accounted and not live:
            report.disagreements.append(Disagreement(name, "uncommitted_rows", 0, seen - accounted))

    candidates_path = root / layout.CANDIDATES
    rows = list(
        committed(
            layout.CANDIDATES,
            (row for _, row in read_rows(candidates_path, CandidateRow, error=EventCompareError)),
        )
    )
    report.checked.append(layout.CANDIDATES)
    validated = [c for c in replay.candidates if c.val_mean is not None]
    feed_ids, row_ids = [c.id for c in validated], [r.candidate_id for r in rows]
    for cid in feed_ids:
        if cid not in row_ids:
            report.disagreements.append(Disagreement(layout.CANDIDATES, cid, "validated", MISSING))
    for rid in row_ids:
        if rid not in feed_ids:
            report.disagreements.append(Disagreement(layout.CANDIDATES, rid, MISSING, "row"))
    # a session validates each candidate when it is decided, not in registration order
    if session is None and set(feed_ids) == set(row_ids) and feed_ids != row_ids:
        diff(layout.CANDIDATES, "order", feed_ids, row_ids)
    by_id = {row.candidate_id: row.dump() for row in rows}
    for candidate in validated:
        row = by_id.get(candidate.id)
        if row is None:
            continue
        for key in ("val_mean", "val_count", "texts", "parents", "origin", "content_hash"):
            diff(layout.CANDIDATES, f"{candidate.id}.{key}", getattr(candidate, key), row.get(key))

    frontier_path = root / layout.FRONTIER
    frontier = read_document(frontier_path, FrontierDoc, error=EventCompareError)
    if replay.frontier is not None or frontier is not None:
        report.checked.append(layout.FRONTIER)
        if live and frontier is not None and _ahead(replay, frontier):
            pass  # written for a decision the feed read does not hold yet
        elif replay.frontier is None or frontier is None:
            feed = MISSING if replay.frontier is None else "a frontier"
            value = MISSING if frontier is None else "present"
            report.disagreements.append(Disagreement(layout.FRONTIER, "(file)", feed, value))
        else:
            diff(layout.FRONTIER, "", replay.frontier.dump(), frontier.dump())

    manifest = read_document(root / layout.MANIFEST, Manifest, error=EventCompareError)
    if manifest is not None:
        report.checked.append(layout.MANIFEST)
        best = replay.best_candidate
        mbest = manifest.best_candidate
        pairs: list[tuple[str, Any, Any]] = [
            ("best_candidate.id", best.id if best else None, mbest.id if mbest else None),
            (
                "best_candidate.val_mean",
                best.val_mean if best else None,
                mbest.val_mean if mbest else None,
            ),
            ("best_candidate.texts", best.texts if best else None, mbest.texts if mbest else None),
        ]
        if replay.finished is not None:
            # a run that failed or was killed before run.finished has no feed-side answer
            pairs += [
                ("stopped_by", replay.stopped_by, manifest.stopped_by),
                (
                    "num_candidates",
                    replay.finished.get("num_candidates"),
                    manifest.num_candidates,
                ),
            ]
        budget = replay.budget or {}
        mbudget = manifest.budget.dump() if manifest.budget is not None else {}
        for key in ("rollouts", "proposals", "tokens", "cost_usd"):
            pairs.append((f"budget.{key}", budget.get(key), mbudget.get(key)))
        for name, feed_value, value in pairs:
            diff(layout.MANIFEST, name, feed_value, value)

    rollouts_path = root / layout.ROLLOUTS
    rollouts = sum(
        1
        for _ in committed(
            layout.ROLLOUTS, read_rows(rollouts_path, RolloutRow, error=EventCompareError)
        )
    )
    report.checked.append(layout.ROLLOUTS)
    total = ((replay.budget or {}).get("rollouts") or {}).get("total", 0)
    diff(layout.ROLLOUTS, "rows", total, rollouts)
    if session is not None:
        # an online session: its rewards ledger holds one row per reward.recorded
        rewards: dict[str, int] = {}
        reward_rows = read_rows(root / layout.REWARDS, RewardRow, error=EventCompareError)
        for _, reward in committed(layout.REWARDS, reward_rows):
            rewards[reward.candidate_id] = rewards.get(reward.candidate_id, 0) + 1
        report.checked.append(layout.REWARDS)
        feed = {c.id: c.rewards.n for c in session.candidates.values() if c.rewards.n}
        diff(layout.REWARDS, "rows_by_candidate", feed, dict(sorted(rewards.items())))
    return report


def _ahead(replay: Replay, frontier: FrontierDoc) -> bool:
    """A held session's frontier.json written for a decision the feed read has not got
    yet: the promotion of one of its challengers, or the first frontier of its best when
    the session ends."""
    session = replay.session
    if session is None:
        return False
    best = frontier.best_candidate_id
    if best in session.challengers:
        return True
    return replay.frontier is None and best == session.incumbent_id


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
