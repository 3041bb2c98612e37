"""Append-only JSONL ledgers (events, rollouts, proposals, candidates).

Lines are buffered in memory and made durable (written + fsynced) by `flush`, which the
runner calls at every checkpoint and records the returned `LedgerOffset` in
checkpoint.json. A run resumed from that checkpoint truncates each ledger back to its
offset, so rows written after the last checkpoint (whose work will be redone) never
appear twice. Readers tolerate a half-written last line, the mark of a crash mid-write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gepa_cli.errors import GepaCliError, ResumeError

LINE_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
# Bounded memory between checkpoints: larger buffers are written early (not fsynced);
# that is safe because resume truncates to the last committed offset anyway.
SPILL_BYTES = 1 << 20


def dumps_line(obj: Any) -> bytes:
    """One canonical JSONL line: compact, sorted keys, final newline."""
    return orjson.dumps(obj, option=LINE_OPTIONS) + b"\n"


class LedgerOffset(BaseModel):
    """How much of a ledger is committed: stored in checkpoint.json per ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lines: int = Field(default=0, ge=0)
    bytes: int = Field(default=0, ge=0)


class JsonlLedger:
    """One append-only JSONL file, owned by one writer (the run)."""

    def __init__(self, path: Path, *, resume_from: LedgerOffset | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_from is None:
            if self.path.exists() and self.path.stat().st_size > 0:
                raise ResumeError(
                    f"ledger {self.path} already holds data",
                    hint="resume the run from its checkpoint or start it under a new run id",
                )
            resume_from = LedgerOffset()
        else:
            _truncate_to(self.path, resume_from)
        self._committed = resume_from
        self._written_bytes = resume_from.bytes
        self._pending_lines = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._handle = open(self.path, "ab")  # noqa: SIM115 - lives as long as the ledger

    @property
    def committed(self) -> LedgerOffset:
        """What the last `flush` made durable."""
        return self._committed

    @property
    def lines(self) -> int:
        """Lines appended so far, committed or not."""
        return self._committed.lines + self._pending_lines

    def append(self, obj: Any) -> int:
        """Buffer one row; return its line index (0-based) in the file."""
        line = dumps_line(obj)
        index = self.lines
        self._buffer.append(line)
        self._buffered += len(line)
        self._pending_lines += 1
        if self._buffered >= SPILL_BYTES:
            self._write_buffer()
        return index

    def flush(self) -> LedgerOffset:
        """Write and fsync everything appended; return the new committed offset."""
        self._write_buffer()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._committed = LedgerOffset(
            lines=self._committed.lines + self._pending_lines, bytes=self._written_bytes
        )
        self._pending_lines = 0
        return self._committed

    def close(self) -> LedgerOffset:
        if self._handle.closed:
            return self._committed
        offset = self.flush()
        self._handle.close()
        return offset

    def _write_buffer(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._handle.write(data)
        self._written_bytes += len(data)
        self._buffer.clear()
        self._buffered = 0

    def __enter__(self) -> JsonlLedger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def check_offset(path: Path, offset: LedgerOffset) -> None:
    """Raise `ResumeError` unless ``path`` can be truncated back to ``offset``."""
    size = path.stat().st_size if path.exists() else 0
    if size < offset.bytes:
        raise ResumeError(
            f"ledger {path} has {size} bytes but the checkpoint recorded {offset.bytes}",
            hint="the run directory was modified after the checkpoint; start a new run",
        )
    if offset.bytes:
        with open(path, "rb") as handle:
            handle.seek(offset.bytes - 1)
            if handle.read(1) != b"\n":
                raise ResumeError(
                    f"ledger {path}: checkpoint offset {offset.bytes} is not at a line end",
                    hint="the run directory was modified after the checkpoint; start a new run",
                )


def _truncate_to(path: Path, offset: LedgerOffset) -> None:
    check_offset(path, offset)
    with open(path, "ab") as handle:
        handle.truncate(offset.bytes)
        handle.flush()
        os.fsync(handle.fileno())


def iter_jsonl(
    path: Path, *, error: type[GepaCliError] = GepaCliError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each line of a JSONL file.

    A last line without its newline that does not parse is the line in flight when a
    writer crashed: it is skipped. Any other bad line raises ``error`` naming the line.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise error(
            f"cannot read {path}: {exc.strerror}", hint="check the path", file=str(path)
        ) from None
    try:
        number = 0
        for raw in handle:
            number += 1
            complete = raw.endswith(b"\n")
            if not raw.strip():
                if complete:
                    continue
                return
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if not complete:
                    return
                raise error(
                    f"{path} line {number} is not valid JSON",
                    hint="fix or remove that line (one JSON object per line)",
                    file=str(path),
                    line=number,
                ) from None
            if not isinstance(obj, dict):
                raise error(
                    f"{path} line {number} is not a JSON object",
                    hint="each line must be one JSON object",
                    file=str(path),
                    line=number,
                )
            yield number, obj
    finally:
        handle.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a ledger (a half-written last line is left out)."""
    return [obj for _, obj in iter_jsonl(path)]
