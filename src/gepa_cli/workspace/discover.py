"""Find run directories from a run dir, a runs dir or a glob, and read their documents.

Everything here only reads: no lock is taken and nothing is written into a run
directory, so a run that is writing is never disturbed.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.liveness import LockInfo, lock_status, read_lock
from gepa_cli.artifacts.registry import RunRecord, RunRegistry
from gepa_cli.artifacts.schema import (
    CacheProfileDoc,
    CheckpointDoc,
    FrontierDoc,
    Manifest,
    Record,
    ResolvedConfigDoc,
    read_document,
)
from gepa_cli.errors import GepaCliError
from gepa_cli.workspace.errors import WorkspaceError

M = TypeVar("M", bound=Record)
GLOB_CHARS = frozenset("*?[")


@dataclass
class RunFiles:
    """One run directory and the small JSON documents it holds, read once."""

    run_id: str
    path: Path
    lock: str = "absent"  # absent | alive | stale | unknown (artifacts.liveness)
    lock_info: LockInfo | None = None
    registry: RunRecord | None = None
    manifest: Manifest | None = None
    checkpoint: CheckpointDoc | None = None
    frontier: FrontierDoc | None = None
    cache_profile: CacheProfileDoc | None = None
    config: ResolvedConfigDoc | None = None
    # bytes on disk per ledger, taken before any ledger is read (see `read_run`)
    ledger_bytes: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def ledger(self, name: str) -> Path:
        return self.path / name

    @property
    def best_candidate_id(self) -> str | None:
        """The manifest's best, or the frontier's while the run has no manifest."""
        if self.manifest and self.manifest.best_candidate:
            return self.manifest.best_candidate.id
        return self.frontier.best_candidate_id if self.frontier else None

    @property
    def seed_candidate_id(self) -> str | None:
        if self.manifest and self.manifest.seed_candidate:
            return self.manifest.seed_candidate.id
        return None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in layout.RUN_MARKERS)


def find_run_dirs(target: str | Path) -> list[Path]:
    """Run directories named by ``target``: one run dir, a runs dir, or a glob of either."""
    text = str(target)
    if GLOB_CHARS & set(text):
        matches = [Path(p) for p in sorted(glob.glob(text)) if Path(p).is_dir()]
        if not matches:
            raise WorkspaceError(
                f"no directory matches {text!r}",
                hint="pass a runs directory, one run directory, or a quoted glob like 'runs/*'",
            )
    else:
        path = Path(text)
        if not path.is_dir():
            raise WorkspaceError(
                f"runs directory {path} does not exist",
                hint="pass the [run] output_dir of your runs (default 'runs') or a run directory",
            )
        matches = [path]
    found: list[Path] = []
    for match in matches:
        if is_run_dir(match):
            found.append(match)
        else:
            found.extend(p for p in sorted(match.iterdir()) if is_run_dir(p))
    seen: dict[str, Path] = {}
    for path in found:
        if path.name in seen and seen[path.name].resolve() != path.resolve():
            raise WorkspaceError(
                f"run id {path.name} is found twice: {seen[path.name]} and {path}",
                hint="query one runs directory at a time; run ids come from directory names",
            )
        seen[path.name] = path
    return list(seen.values())


def _load(path: Path, model: type[M], run: RunFiles) -> M | None:
    """The document, or None when it is absent or unreadable (noted in ``unreadable``)."""
    try:
        return read_document(path, model, error=WorkspaceError)
    except WorkspaceError as error:
        run.unreadable[path.name] = error.message
        return None


def read_run(path: Path, registry: dict[str, RunRecord] | None = None) -> RunFiles:
    """Read the documents of one run.

    Order matters for a run that is writing: the checkpoint is read before the ledger
    sizes, and the ledgers are read (by DuckDB) after both, so every offset the
    checkpoint names is already on disk when the ledgers are counted.
    """
    run = RunFiles(run_id=path.name, path=path)
    run.lock = lock_status(path)
    run.lock_info = read_lock(path)
    run.registry = (registry or {}).get(path.name)
    run.checkpoint = _load(path / layout.CHECKPOINT, CheckpointDoc, run)
    run.manifest = _load(path / layout.MANIFEST, Manifest, run)
    run.frontier = _load(path / layout.FRONTIER, FrontierDoc, run)
    run.cache_profile = _load(path / layout.CACHE_PROFILE, CacheProfileDoc, run)
    run.config = _load(path / layout.CONFIG_RESOLVED, ResolvedConfigDoc, run)
    for name in layout.LEDGERS:
        try:
            run.ledger_bytes[name] = os.stat(path / name).st_size
        except FileNotFoundError:
            continue
    return run


def read_runs(target: str | Path) -> list[RunFiles]:
    """Every run named by ``target`` with its registry line (last line per run wins)."""
    dirs = find_run_dirs(target)
    registries: dict[Path, dict[str, RunRecord]] = {}
    runs = []
    for path in dirs:
        parent = path.parent
        if parent not in registries:
            try:
                registries[parent] = RunRegistry(parent).runs()
            except GepaCliError:
                # a damaged registry costs only the registry state, never the status
                registries[parent] = {}
        runs.append(read_run(path, registries[parent]))
    return runs
