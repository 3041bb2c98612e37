"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Every JSON document of the run directory (config.resolved.json, frontier.json,
checkpoint.json, cache_profile.json, manifest.json) and every cache entry is written
here: a temp file in the same directory (so ``os.replace`` is a rename on one
filesystem), fsynced before the rename, then the directory fsynced so the rename
itself survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

# Temp files start with "." and end with ".tmp" so globs like "*.json" (DuckDB, inspect)
# never pick up a write that a crash left behind.
TEMP_SUFFIX = ".tmp"

JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def dumps_pretty(data: Any) -> bytes:
    """Stable, diff-friendly JSON: sorted keys, two-space indent, final newline."""
    return orjson.dumps(data, option=JSON_OPTIONS) + b"\n"


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def fsync_dir(directory: Path) -> None:
    # Not every platform lets a directory be opened for fsync; the rename is still atomic.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path, payload: bytes, *, fsync: bool = True) -> None:
    """Write ``payload`` to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    if fsync:
        fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any, *, fsync: bool = True) -> int:
    """Write ``data`` as stable pretty JSON atomically; return the number of bytes."""
    payload = dumps_pretty(data)
    write_bytes_atomic(path, payload, fsync=fsync)
    return len(payload)
