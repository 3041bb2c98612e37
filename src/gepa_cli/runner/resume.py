"""Where a run left off, and whether today's config may continue it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gepa_cli.artifacts import RunDirectory, lock_status
from gepa_cli.config import GepaConfig, load_config
from gepa_cli.engine.settings import RESUMABLE_FIELDS
from gepa_cli.errors import ResumeError
from gepa_cli.runner.recorder import CHECKPOINT_FORMAT

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
    "proposer.base_url",
    "proposer.api_key_env",
    "proposer.timeout_seconds",
    "proposer.retries",
    *(f"gepa.{name}" for name in sorted(RESUMABLE_FIELDS)),
    "gepa.rollout_submission_mode",
)


@dataclass(frozen=True)
class ResumePoint:
    run_dir: RunDirectory
    config: GepaConfig
    config_path: Path | None
    base_dir: Path
    snapshot: dict[str, Any]
    ledgers: dict[str, Any]
    runner: dict[str, Any]

    @property
    def started_at(self) -> str:
        return str(self.runner.get("started_at", ""))

    @property
    def state_history(self) -> list[dict[str, Any]]:
        return list(self.runner.get("state_history", []))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ResumeError(
            f"{path} does not exist",
            hint=f"{what}; a run can only be resumed after its first checkpoint",
        ) from None
    except orjson.JSONDecodeError as exc:
        raise ResumeError(f"{path} is not valid JSON ({exc})", hint="start a new run") from None
    if not isinstance(data, dict):
        raise ResumeError(f"{path} is not a JSON object", hint="start a new run")
    return data


def load_resume_point(root: Path, config_path: Path | None = None) -> ResumePoint:
    run_dir = RunDirectory(root)
    if not run_dir.root.is_dir():
        raise ResumeError(f"run directory {root} does not exist", hint="check the path")
    if lock_status(run_dir.root) == "alive":
        raise ResumeError(
            f"run {run_dir.run_id} is still running", hint="stop it first with `gepa-cli gepa stop`"
        )
    manifest_path = run_dir.manifest
    if manifest_path.exists():
        state = _read_json(manifest_path, "the manifest is missing").get("state")
        if state == "finished":
            raise ResumeError(
                f"run {run_dir.run_id} already finished", hint="start a new run to go further"
            )
    checkpoint = _read_json(run_dir.checkpoint, "the run never reached a checkpoint")
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(
            f"{run_dir.checkpoint} has format {checkpoint.get('format')!r}, "
            f"expected {CHECKPOINT_FORMAT!r}",
            hint="resume it with the gepa-cli version that wrote it",
        )
    resolved = _read_json(run_dir.config_resolved, "the run directory is incomplete")
    try:
        recorded = GepaConfig.model_validate(resolved["config"])
    except (KeyError, ValidationError) as exc:
        raise ResumeError(
            f"{run_dir.config_resolved} does not hold a valid config ({exc})",
            hint="the run directory is damaged; start a new run",
        ) from None
    source = config_path
    if source is None and resolved.get("config_path"):
        candidate = Path(str(resolved["config_path"]))
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
    recorded_base = resolved.get("base_dir")
    if config_path is not None or not recorded_base:
        base_dir = (source or root).resolve().parent
    else:
        base_dir = Path(str(recorded_base))
    return ResumePoint(
        run_dir=run_dir,
        config=config,
        config_path=source,
        base_dir=base_dir,
        snapshot=dict(checkpoint.get("engine") or {}),
        ledgers=dict(checkpoint.get("ledgers") or {}),
        runner=dict(checkpoint.get("runner") or {}),
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
