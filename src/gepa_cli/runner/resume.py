"""Where a run left off, and whether today's config may continue it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from gepa_cli.artifacts import LedgerOffset, RunDirectory, lock_status
from gepa_cli.artifacts.schema import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMATS,
    CheckpointDoc,
    Manifest,
    Record,
    ResolvedConfigDoc,
    RolloutRow,
    RunnerState,
    StateChange,
    parse_document,
    read_rows,
    read_snapshot,
)
from gepa_cli.config import GepaConfig, load_config
from gepa_cli.engine import MemoEntry
from gepa_cli.engine.settings import RESUMABLE_FIELDS
from gepa_cli.errors import ResumeError

# Fields that may differ on resume: where things are and how hard to try, never what is
# optimized or how. The [gepa] part is the engine's own rule (RESUMABLE_FIELDS), which
# it enforces again on the checkpoint, so the two can never disagree.
MAY_CHANGE = (
    "run.run_id",
    "run.output_dir",
    "cache.mode",
    "cache.path",
    "container.*",
    "policy.base_url",
    "policy.api_key_env",
    "policy.timeout_seconds",
    "proposer.base_url",
    "proposer.api_key_env",
    "proposer.timeout_seconds",
    "proposer.retries",
    *(f"gepa.{name}" for name in sorted(RESUMABLE_FIELDS)),
    "gepa.rollout_submission_mode",
    "gepa.pipeline.workers.*",
)

M = TypeVar("M", bound=Record)


class _Format(Record):
    """Only the format of a checkpoint: checked before the rest is read."""

    format: str | None = None


@dataclass(frozen=True)
class ResumePoint:
    run_dir: RunDirectory
    config: GepaConfig
    config_path: Path | None
    base_dir: Path
    checkpoint: CheckpointDoc
    # the engine snapshot the checkpoint names
    snapshot: dict[str, Any]
    # the manifest of the run's last stop, if it stopped (or failed) rather than crashed
    manifest: Manifest | None = None

    @property
    def ledgers(self) -> dict[str, LedgerOffset]:
        return self.checkpoint.ledgers

    @property
    def runner(self) -> RunnerState:
        return self.checkpoint.runner

    @property
    def started_at(self) -> str:
        return self.runner.started_at

    @property
    def state_history(self) -> list[StateChange]:
        """The run's states so far. The checkpoint's list ends before the run stopped
        and the manifest's after it; each written list holds every earlier one, so the
        longer is the later."""
        history = self.runner.state_history
        if self.manifest is not None and len(self.manifest.state_history) > len(history):
            history = self.manifest.state_history
        return list(history)


def _raw(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ResumeError(
            f"{path} does not exist",
            hint=f"{what}; a run can only be resumed after its first checkpoint",
        ) from None
    except OSError as exc:
        raise ResumeError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None


def _read(path: Path, model: type[M], what: str) -> M:
    return parse_document(path, _raw(path, what), model, error=ResumeError, hint="start a new run")


def load_resume_point(root: Path, config_path: Path | None = None) -> ResumePoint:
    run_dir = RunDirectory(root)
    if not run_dir.root.is_dir():
        raise ResumeError(f"run directory {root} does not exist", hint="check the path")
    if lock_status(run_dir.root) == "alive":
        raise ResumeError(
            f"run {run_dir.run_id} is still running", hint="stop it first with `gepa-cli gepa stop`"
        )
    manifest = None
    if run_dir.manifest.exists():
        manifest = _read(run_dir.manifest, Manifest, "the manifest is missing")
        if manifest.state == "finished":
            raise ResumeError(
                f"run {run_dir.run_id} already finished", hint="start a new run to go further"
            )
    path = run_dir.checkpoint
    raw = _raw(path, "the run never reached a checkpoint")
    found = parse_document(path, raw, _Format, error=ResumeError, hint="start a new run").format
    if found not in CHECKPOINT_FORMATS:
        raise ResumeError(
            f"{path} has format {found!r}, expected {CHECKPOINT_FORMAT!r}",
            hint="resume it with the gepa-cli version that wrote it",
        )
    checkpoint = parse_document(path, raw, CheckpointDoc, error=ResumeError, hint="start a new run")
    snapshot = read_snapshot(run_dir.root, checkpoint, error=ResumeError)
    resolved = _read(run_dir.config_resolved, ResolvedConfigDoc, "the run directory is incomplete")
    try:
        recorded = GepaConfig.model_validate(resolved.config)
    except ValidationError as exc:
        raise ResumeError(
            f"{run_dir.config_resolved} does not hold a valid config ({exc})",
            hint="the run directory is damaged; start a new run",
        ) from None
    source = config_path
    if source is None and resolved.config_path:
        candidate = Path(resolved.config_path)
        source = candidate if candidate.exists() else None
    config = recorded
    if source is not None:
        current = load_config(
            source,
            overrides={"run.run_id": run_dir.run_id, "run.output_dir": str(run_dir.runs_dir)},
        )
        check_compatible(recorded, current, source)
        config = current
    # the run's own base dir, unless the user hands in another config file to go on with
    recorded_base = resolved.base_dir
    if config_path is not None or not recorded_base:
        base_dir = (source or root).resolve().parent
    else:
        base_dir = Path(str(recorded_base))
    return ResumePoint(
        run_dir=run_dir,
        config=config,
        config_path=source,
        base_dir=base_dir,
        checkpoint=checkpoint,
        snapshot=snapshot,
        manifest=manifest,
    )


def check_compatible(recorded: GepaConfig, current: GepaConfig, source: Path) -> None:
    """Refuse a config whose changes would make a different run than the recorded one."""
    before, after = _flatten(recorded.resolved_dict()), _flatten(current.resolved_dict())
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in MAY_CHANGE):
            continue
        raise ResumeError(
            f"{source}: '{key}' changed since the run started "
            f"({before.get(key)!r} -> {after.get(key)!r})",
            hint="restore it, or start a new run with the new config",
            field=key,
        )


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: node}


def memo_from_rollouts(path: Path) -> dict[str, dict[str, MemoEntry]]:
    """The engine's memo as the rollout ledger records it (call it once the ledger is
    cut back to the checkpoint): per content hash and example, the first charged
    result, which is the one the engine kept. Rows fetched ahead and never used
    (``discarded``) were charged but never remembered."""
    memo: dict[str, dict[str, MemoEntry]] = {}
    for number, row in read_rows(path, RolloutRow, error=ResumeError):
        if row.discarded:
            continue
        if row.content_hash is None or row.score is None:
            missing = "content_hash" if row.content_hash is None else "score"
            raise ResumeError(
                f"{path} line {number} has no {missing}, but the checkpoint relies on it",
                hint="the ledger was written by another version, edited, or is an online "
                "session's; start a new run",
            )
        memo.setdefault(row.content_hash, {}).setdefault(
            row.example_id,
            MemoEntry(
                score=row.score,
                status=row.status,
                output=row.output,
                feedback=row.feedback or "",
                objectives=dict(row.objectives),
                error=row.error,
            ),
        )
    return memo
