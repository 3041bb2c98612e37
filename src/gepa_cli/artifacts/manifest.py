"""Manifest helpers: artifact digests and the state history of a run."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gepa_cli.artifacts.atomic import is_temp_file, write_json_atomic
from gepa_cli.artifacts.events import utc_now

# Not digested: the manifest cannot hold its own hash, and the lock and STOP file are
# control files whose presence depends on when the manifest is written.
NOT_DIGESTED = frozenset({"manifest.json", "run.lock", "STOP"})


class ArtifactDigest(BaseModel):
    sha256: str
    bytes: int


def file_digest(path: Path) -> ArtifactDigest:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return ArtifactDigest(sha256=sha.hexdigest(), bytes=size)


def artifact_digests(
    run_dir: Path, *, exclude: Iterable[str] = NOT_DIGESTED
) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {sha256, bytes}}`` for every file in the run directory."""
    skip = set(exclude)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or is_temp_file(path):
            continue
        relative = path.relative_to(run_dir).as_posix()
        if relative in skip:
            continue
        out[relative] = file_digest(path).model_dump()
    return out


class StateChange(BaseModel):
    state: str
    at: str


class StateHistory:
    """Ordered (state, at) list kept in the checkpoint and copied into the manifest."""

    def __init__(self, changes: Iterable[StateChange] = ()) -> None:
        self.changes = list(changes)

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> StateHistory:
        return cls(StateChange.model_validate(item) for item in items)

    @property
    def current(self) -> str | None:
        return self.changes[-1].state if self.changes else None

    def enter(self, state: str, at: str | None = None) -> StateChange:
        change = StateChange(state=state, at=at or utc_now())
        self.changes.append(change)
        return change

    def to_list(self) -> list[dict[str, str]]:
        return [change.model_dump() for change in self.changes]


def write_manifest(
    run_dir: Path, fields: Mapping[str, Any], history: StateHistory
) -> dict[str, Any]:
    """Write manifest.json: the runner's result ``fields`` plus state history and digests.

    Call it last: digests cover every other file as it is at that moment.
    """
    manifest = dict(fields)
    manifest["state_history"] = history.to_list()
    manifest["state"] = history.current
    manifest["artifacts"] = artifact_digests(run_dir)
    write_json_atomic(run_dir / "manifest.json", manifest)
    return manifest
