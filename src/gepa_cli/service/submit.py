"""Service settings, path confinement, and turning a submission into a queued request.

A submission is validated exactly as `gepa run` would validate it before anything is
queued, so a bad config is answered at once (422) instead of failing in a worker.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gepa_cli.config import GepaConfig, config_from_dict, load_config
from gepa_cli.errors import ConfigError
from gepa_cli.service.errors import BadRequestError, ConflictError, PathNotAllowedError
from gepa_cli.service.keys import KeyRing
from gepa_cli.service.queue import Request, RunQueue

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class ServiceSettings:
    db: str  # a SQLite file path or a postgresql:// URL
    output_dir: Path
    allowed_roots: tuple[Path, ...]
    worker_id: str = "worker"
    workers: int = 1
    keys: KeyRing = field(default_factory=KeyRing)
    lease_seconds: float = 30.0
    poll_seconds: float = 0.2
    keepalive_seconds: float = 15.0
    # a worker not seen for this long is stale (None: the lease time)
    stale_seconds: float | None = None
    # how long running children get to stop at a safe point when the service stops
    shutdown_grace_seconds: float = 10.0
    # runs' stdout/stderr logs and submitted config files live here
    data_dir: Path = field(default=Path(".gepa-service"))

    @property
    def config_dir(self) -> Path:
        return self.data_dir / "configs"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def stale_after(self) -> float:
        return self.stale_seconds if self.stale_seconds is not None else self.lease_seconds


def confine(path: str | Path, roots: tuple[Path, ...], what: str = "path") -> Path:
    """``path`` resolved (relative ones against the first root); outside every root: 400."""
    raw = Path(path)
    resolved = (raw if raw.is_absolute() else roots[0] / raw).resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise PathNotAllowedError(
            f"{what} {str(path)!r} resolves to {resolved}, outside the allowed roots",
            hint="use a path under " + ", ".join(str(root) for root in roots),
        )
    return resolved


def config_source(body: Mapping[str, Any], roots: tuple[Path, ...]) -> tuple[Path | None, Path]:
    """(config file, the directory its relative paths resolve from) of a submitted body:
    exactly one of ``config_path`` and ``config_toml`` (with ``base_dir``), confined to
    the allowed roots. A run's and an online session's submissions alike."""
    config_path, config_toml = body.get("config_path"), body.get("config_toml")
    if (config_path is None) == (config_toml is None):
        raise BadRequestError("give exactly one of 'config_path' and 'config_toml'")
    if config_path is not None:
        path = confine(str(config_path), roots, "config_path")
        return path, path.parent
    return None, confine(str(body.get("base_dir") or roots[0]), roots, "base_dir")


def confine_files(config: Any, roots: tuple[Path, ...]) -> None:
    """The files a config (a run's or a session's) names must be under the allowed roots."""
    for label, value in (
        ("cache.path", config.cache.path),
        ("proposer.prompt_template", config.proposer.prompt_template),
    ):
        if value is not None:
            confine(value, roots, label)


def container_key(config: GepaConfig, base_dir: Path) -> str:
    """One key per container: a URL is shared; an app or command is per config directory."""
    container = config.container
    if container.url:
        return f"url:{container.url}"
    if container.app:
        return f"app:{base_dir}:{container.app}"
    return f"command:{base_dir}:{json.dumps(container.command)}"


def namespace_key(config: GepaConfig) -> str:
    return f"{config.cache.path.resolve()}#{config.cache.namespace}"


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"svc-{stamp}-{secrets.token_hex(4)}"


def submit(
    queue: RunQueue, settings: ServiceSettings, body: dict[str, Any], client: str | None = None
) -> Request:
    """Validate a ``POST /runs`` body and queue it; raises before queueing on any problem."""
    roots = settings.allowed_roots
    path, source_dir = config_source(body, roots)
    base_dir: Path | None = None
    if path is not None:
        config = load_config(path)
    else:
        base_dir = source_dir
        try:
            raw = tomllib.loads(str(body["config_toml"]))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config_toml is not valid TOML: {exc}") from None
        config = config_from_dict(raw, base_dir=base_dir, source="config_toml")
    confine_files(config, roots)
    run_id = config.run.run_id or new_run_id()
    run_dir = (settings.output_dir / run_id).resolve()
    if run_dir.exists():
        raise ConflictError(
            f"run directory {run_dir} already exists", hint="pick another [run] run_id"
        )
    if path is None:
        settings.config_dir.mkdir(parents=True, exist_ok=True)
        path = settings.config_dir / f"{run_id}.toml"
        path.write_text(str(body["config_toml"]), encoding="utf-8")
    request = queue.insert(
        run_id=run_id,
        config_path=path,
        base_dir=base_dir,
        run_dir=run_dir,
        container_key=container_key(config, source_dir.resolve()),
        namespace_key=namespace_key(config),
        priority=int(body.get("priority") or 0),
        auto_start=bool(body.get("auto_start", True)),
        client=client,
    )
    return request


__all__ = ["ServiceSettings", "confine", "submit"]
