"""Check a run's other artifacts (candidates, frontier, manifest, rollouts) against
what its feed says, field by field, so a disagreement names the file and the field."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gepa_cli.artifacts.compare import MISSING, differing_keys
from gepa_cli.artifacts.ledger import iter_jsonl
from gepa_cli.errors import EventCompareError

if TYPE_CHECKING:
    from gepa_cli.artifacts.replay import Replay


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
