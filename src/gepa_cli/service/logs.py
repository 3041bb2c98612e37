"""A run's own stdout and stderr (the child's), read from the end or followed as it grows.

Each request's child writes ``<data_dir>/logs/<request_id>.out`` and ``.err``; every
attempt appends, so the log of a resumed run tells its whole story.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

STREAMS = {"stdout": ".out", "stderr": ".err"}
BLOCK = 1 << 16


def log_path(log_dir: Path, request_id: str, stream: str) -> Path:
    return log_dir / f"{request_id}{STREAMS[stream]}"


def tail_bytes(path: Path, lines: int | None) -> tuple[bytes, int]:
    """The last ``lines`` lines of ``path`` (all of it for None), and the file's size."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if lines is None:
            handle.seek(0)
            return handle.read(size), size
        # read blocks backwards until enough newlines are in hand
        start, chunk = size, b""
        while start > 0 and chunk.count(b"\n") <= lines:
            step = min(BLOCK, start)
            start -= step
            handle.seek(start)
            chunk = handle.read(step) + chunk
        body = chunk[:-1] if chunk.endswith(b"\n") else chunk
        kept = body.split(b"\n")[-lines:] if lines else []
        text = b"\n".join(kept)
        return (text + b"\n" if kept and chunk.endswith(b"\n") else text), size


async def follow(
    path: Path,
    start: int,
    active: Callable[[], Awaitable[bool]],
    closing: Callable[[], bool],
    *,
    poll_seconds: float = 0.2,
) -> AsyncIterator[bytes]:
    """Bytes appended to ``path`` after offset ``start``, until the request stops being
    active and the file is drained (or the service shuts down)."""
    offset = start
    while not closing():
        # the state is read before the file, so a run that ends in between is drained
        still = await active()
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, 2)
                if size < offset:
                    offset = 0  # replaced
                handle.seek(offset)
                data = handle.read(size - offset)
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            yield data
        elif not still:
            return
        await asyncio.sleep(poll_seconds)
