"""A session's run directory as it is written: ledgers, event feed, group commit, index.

Every line goes to the OS with one ``write`` as soon as it is appended, so a SIGKILL
loses nothing appended before it; `SessionLog.durable` waits for an ``fsync`` that
covers everything appended so far, and concurrent waiters share one fsync (group
commit). A decision writes its ledger row first and its event last: the event is the
commit record, and `SessionLog.open` cuts every ledger back to the rows its events
account for, so a crash between the two writes leaves no orphan row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.events import utc_now
from gepa_cli.artifacts.ledger import dumps_line
from gepa_cli.artifacts.schema import EventLine, Record
from gepa_cli.artifacts.session_fold import ROWS_OF
from gepa_cli.online.errors import SessionStateError


class AppendFile:
    """One append-only JSONL file, every line written through with one ``write``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.lines = 0  # set by the caller after recovery counted them
        self.dirty = False

    def append(self, line: bytes) -> int:
        """Write one line; return its byte offset."""
        offset = self.size
        view = memoryview(line)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(line)
        self.lines += 1
        self.dirty = True
        return offset

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass(frozen=True)
class Written:
    event: dict[str, Any]
    row_offset: int | None


def count_lines(path: Path) -> tuple[int, int]:
    """(complete lines, bytes up to the end of the last complete line)."""
    lines = end = position = 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return 0, 0
    with handle:
        while chunk := handle.read(1 << 20):
            newlines = chunk.count(b"\n")
            if newlines:
                lines += newlines
                end = position + chunk.rfind(b"\n") + 1
            position += len(chunk)
    return lines, end


def offset_after(path: Path, lines: int) -> int:
    """The byte offset just after the first ``lines`` lines of ``path``."""
    if lines == 0:
        return 0
    seen = position = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            start = 0
            while True:
                index = chunk.find(b"\n", start)
                if index < 0:
                    break
                seen += 1
                if seen == lines:
                    return position + index + 1
                start = index + 1
            position += len(chunk)
    raise SessionStateError(f"{path} has fewer than {lines} lines")


def truncate(path: Path, size: int) -> None:
    with open(path, "ab") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


class SessionLog:
    """The ledgers and the event feed of one session directory."""

    def __init__(self, root: Path, session_id: str, clock: Callable[[], str] = utc_now) -> None:
        self.root = root
        self.session_id = session_id
        self.clock = clock
        self.files: dict[str, AppendFile] = {}
        self.next_seq = 0
        self._written = 0  # appends so far
        self._synced = 0  # appends covered by the last fsync
        self._sync_task: asyncio.Task[None] | None = None
        self.after_sync: list[Callable[[], None]] = []

    # -- opening: recovery ------------------------------------------------------------

    def open(self, counts: Mapping[str, int] | None = None) -> None:
        """Open the files for appending. ``counts`` (events by type) is what the caller
        folded from events.jsonl (its complete lines); every ledger is cut back to the
        rows those events account for, and a half-written last event line is cut off."""
        self.root.mkdir(parents=True, exist_ok=True)
        feed = self.root / layout.EVENTS
        event_lines, event_end = count_lines(feed)
        if feed.exists() and feed.stat().st_size != event_end:
            truncate(feed, event_end)
        counts = counts or {}
        if sum(counts.values()) != event_lines:
            raise SessionStateError(
                f"{feed} has {event_lines} lines but {sum(counts.values())} events were folded"
            )
        for name, accounted_by in ROWS_OF.items():
            path = self.root / name
            expected = sum(counts.get(kind, 0) for kind in accounted_by)
            lines, end = count_lines(path)
            if lines < expected:
                raise SessionStateError(
                    f"{path} has {lines} rows but events.jsonl accounts for {expected}",
                    hint="the ledger lost rows its events recorded; restore it from a copy",
                )
            keep = end if lines == expected else offset_after(path, expected)
            if path.exists() and path.stat().st_size != keep:
                truncate(path, keep)
        for name in layout.SESSION_LEDGERS:
            handle = AppendFile(self.root / name)
            handle.lines = event_lines if name == layout.EVENTS else count_lines(handle.path)[0]
            self.files[name] = handle
        self.next_seq = event_lines

    def close(self) -> None:
        for handle in self.files.values():
            if handle.dirty:
                handle.fsync()
            handle.close()
        self.files.clear()

    # -- appending --------------------------------------------------------------------

    def append(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        ledger: str | None = None,
        row: Record | None = None,
    ) -> Written:
        """Write ``row`` to ``ledger`` (if given), then the event. Synchronous on purpose:
        no other coroutine can append between the row and its event."""
        row_offset = None
        if ledger is not None and row is not None:
            row_offset = self.files[ledger].append(dumps_line(row.dump()))
        event = EventLine(
            seq=self.next_seq, ts=self.clock(), type=kind, run_id=self.session_id, data=dict(data)
        ).dump()
        self.files[layout.EVENTS].append(dumps_line(event))
        self.next_seq += 1
        self._written += 1
        return Written(event, row_offset)

    def read_row(self, ledger: str, offset: int) -> dict[str, Any]:
        """The row written at ``offset`` of ``ledger``."""
        with open(self.root / ledger, "rb") as handle:
            handle.seek(offset)
            line = handle.readline()
        data = orjson.loads(line)
        if not isinstance(data, dict):
            raise SessionStateError(f"{self.root / ledger} offset {offset} is not a row")
        return data

    @property
    def events_size(self) -> int:
        return self.files[layout.EVENTS].size

    # -- durability -------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        return self._synced < self._written

    async def durable(self) -> None:
        """Return once everything appended before the call is fsynced."""
        target = self._written
        while self._synced < target:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.create_task(self._sync())
            await asyncio.shield(self._sync_task)

    async def _sync(self) -> None:
        upto = self._written
        dirty = [handle for handle in self.files.values() if handle.dirty]
        for handle in dirty:
            handle.dirty = False
        # the ledgers before the feed: an event is never durable before its row
        await asyncio.to_thread(_fsync_all, dirty)
        self._synced = max(self._synced, upto)
        for hook in self.after_sync:
            hook()

    def fsync_now(self) -> None:
        dirty = [handle for handle in self.files.values() if handle.dirty]
        for handle in dirty:
            handle.dirty = False
        _fsync_all(dirty)
        self._synced = self._written
        for hook in self.after_sync:
            hook()


def _fsync_all(handles: list[AppendFile]) -> None:
    ordered = sorted(handles, key=lambda h: h.path.name == layout.EVENTS)
    for handle in ordered:
        handle.fsync()


def iter_feed(
    root: Path, *, start: int = 0, first_seq: int = 0
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, data) of every complete event of a session's feed from byte ``start`` (whose
    event has seq ``first_seq``), checking that ``seq`` runs on without a gap."""
    path = root / layout.EVENTS
    if not path.exists():
        return
    expected = first_seq
    with open(path, "rb") as handle:
        handle.seek(start)
        for line in handle:
            if not line.endswith(b"\n"):
                return  # the line in flight when a writer died: cut off by `open`
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = None
            kind = event.get("type") if isinstance(event, dict) else None
            data = event.get("data") if isinstance(event, dict) else None
            if (
                not isinstance(kind, str)
                or not isinstance(data, dict)
                or event.get("seq") != expected
            ):
                raise SessionStateError(
                    f"{path}: the event after seq {expected - 1} is not a valid seq {expected}",
                    hint="events.jsonl was edited or written by two processes; restore it",
                )
            expected += 1
            yield kind, data
