"""Server-sent events from a run's ``events.jsonl``, resumable by ``seq``.

Each SSE message carries one event line: ``id:`` is its ``seq`` (contiguous from 0),
so a client that reconnects with ``Last-Event-ID: N`` gets every event after N. The
file is tailed by byte offset and only complete lines are sent; a resumed run truncates
the feed back to its checkpoint and rewrites later seqs, so the stream goes by seq,
never by offset, and sends each seq once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
from starlette.responses import StreamingResponse

from gepa_cli.artifacts.schema import EventLine
from gepa_cli.service.errors import BadRequestError

FINAL_STATUSES = ("succeeded", "failed", "cancelled", "paused")


class FeedTail:
    """Complete lines of a growing JSONL file, from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as handle:
                size = handle.seek(0, 2)
                if size < self.offset:
                    self.offset = 0  # truncated back to a checkpoint by a resume
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return [line for line in chunk[: end + 1].split(b"\n") if line.strip()]


def format_event(seq: int, line: bytes) -> bytes:
    return b"id: " + str(seq).encode() + b"\nevent: run_event\ndata: " + line + b"\n\n"


async def stream_events(
    events_path: Path,
    status_of: Callable[[], Awaitable[str]],
    *,
    after: int = -1,
    poll_seconds: float = 0.1,
    keepalive_seconds: float = 15.0,
    closing: Callable[[], bool] = lambda: False,
) -> AsyncIterator[bytes]:
    """Every event with seq > ``after``, in order, until the run is over and drained.

    When the service shuts down (``closing``) the stream just ends, without an ``end``
    event: the client reconnects (to another process) with its Last-Event-ID."""
    tail = FeedTail(events_path)
    last_sent, last_write = after, time.monotonic()
    yield b"retry: 1000\n\n"
    while not closing():
        # the status is read before the file, so a run that ends in between is drained
        status = await status_of()
        sent_any = False
        for line in tail.read():
            try:
                seq = EventLine.model_validate_json(line).seq
            except ValueError:  # pydantic's ValidationError, for a bad or half-written line
                continue
            if seq <= last_sent:
                continue
            last_sent, sent_any = seq, True
            yield format_event(seq, line)
        if sent_any:
            last_write = time.monotonic()
        elif status in FINAL_STATUSES:
            yield b"event: end\ndata: " + orjson.dumps({"status": status}) + b"\n\n"
            return
        elif time.monotonic() - last_write >= keepalive_seconds:
            last_write = time.monotonic()
            yield b": keepalive\n\n"
        await asyncio.sleep(poll_seconds)


def event_stream_response(
    events_path: Path,
    status_of: Callable[[], Awaitable[str]],
    last_event_id: str | None,
    *,
    keepalive_seconds: float,
    closing: Callable[[], bool],
) -> StreamingResponse:
    """The SSE answer of an events route: resumed after ``Last-Event-ID`` when given."""
    try:
        after = int(last_event_id) if last_event_id not in (None, "") else -1
    except ValueError:
        raise BadRequestError(f"Last-Event-ID {last_event_id!r} is not a seq") from None
    return StreamingResponse(
        stream_events(
            events_path,
            status_of,
            after=after,
            keepalive_seconds=keepalive_seconds,
            closing=closing,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
