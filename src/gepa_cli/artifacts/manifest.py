"""Manifest helpers: artifact digests, the state history of a run, and the write."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.atomic import is_temp_file, write_json_atomic
from gepa_cli.artifacts.events import utc_now
from gepa_cli.artifacts.schema import ArtifactDigest, Manifest, StateChange


def file_digest(path: Path) -> ArtifactDigest:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return ArtifactDigest(sha256=sha.hexdigest(), bytes=size)


def artifact_digests(
    run_dir: Path, *, exclude: Iterable[str] = layout.NOT_DIGESTED
) -> dict[str, ArtifactDigest]:
    """``{relative posix path: digest}`` for every file in the run directory."""
    skip = set(exclude)
    out: dict[str, ArtifactDigest] = {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or is_temp_file(path):
            continue
        relative = path.relative_to(run_dir).as_posix()
        if relative in skip:
            continue
        out[relative] = file_digest(path)
    return out


class StateHistory:
    """Ordered (state, at) list kept in the checkpoint and copied into the manifest."""

    def __init__(self, changes: Iterable[StateChange] = ()) -> None:
        self.changes = list(changes)

    @property
    def current(self) -> str | None:
        return self.changes[-1].state if self.changes else None

    def enter(self, state: str, at: str | None = None) -> StateChange:
        change = StateChange(state=state, at=at or utc_now())
        self.changes.append(change)
        return change


def write_manifest(run_dir: Path, manifest: Manifest) -> Manifest:
    """Write manifest.json with the digests of every other file, as they are now.

    Call it last: the digests cover every other file at that moment.
    """
    written = manifest.model_copy(update={"artifacts": artifact_digests(run_dir)})
    write_json_atomic(run_dir / layout.MANIFEST, written.dump())
    return written
