"""The event feed (events.jsonl) and its normalized form (events.normalized.jsonl).

A raw line is ``{"data", "run_id", "seq", "ts", "type"}`` with ``seq`` contiguous from
0. The normalized feed keeps ``seq``, ``type`` and ``data`` minus `VOLATILE_KEYS` (at any
depth) so that a recorded run, its cached rerun and its readonly replay give the same
bytes. The list is documented in docs/run-directory.md; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gepa_cli.artifacts.atomic import write_bytes_atomic
from gepa_cli.artifacts.ledger import JsonlLedger, dumps_line, iter_jsonl
from gepa_cli.artifacts.schema import EventLine
from gepa_cli.errors import EventCompareError

# Exact names (compared lower-case) that vary between runs without the result varying.
VOLATILE_KEYS = frozenset(
    {
        # clocks and durations
        "ts",
        "time",
        "timestamp",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
        "elapsed_seconds",
        "duration_ms",
        "latency_ms",
        "wall_seconds",
        # where the run happened
        "path",
        "run_dir",
        "output_dir",
        "config_path",
        "cache_path",
        "cwd",
        "url",
        "base_url",
        "endpoint",
        "host",
        "hostname",
        "port",
        "pid",
        "run_id",
        "rollout_id",
        "request_id",
        # the cache and live spend (a replay spends nothing and hits everything)
        "cache_action",
        "cache_hit",
        "cache_hits",
        "spent_usd",
        "live_cost_usd",
        "attempts",
        "retries_used",
    }
)
# Suffixes of the same families, so new fields named by convention are covered too.
VOLATILE_SUFFIXES = ("_at", "_ms", "_ns", "_seconds", "_path", "_dir", "_url")

TOP_LEVEL_DROPPED = ("ts", "run_id")


def is_volatile(key: str) -> bool:
    lowered = key.lower()
    return lowered in VOLATILE_KEYS or lowered.endswith(VOLATILE_SUFFIXES)


def utc_now() -> str:
    """UTC ISO-8601 with milliseconds and a Z, e.g. 2025-01-31T12:00:00.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventWriter:
    """Wraps engine events (type, data) into numbered lines of a ledger."""

    def __init__(
        self,
        ledger: JsonlLedger,
        run_id: str,
        *,
        next_seq: int | None = None,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.ledger = ledger
        self.run_id = run_id
        # On resume the ledger was truncated to the checkpoint, so its line count is the
        # next seq; an explicit next_seq must agree or the feed would have a gap.
        self.next_seq = ledger.lines if next_seq is None else next_seq
        if self.next_seq != ledger.lines:
            raise ValueError(
                f"next_seq {self.next_seq} does not match the {ledger.lines} lines of {ledger.path}"
            )
        self._clock = clock

    def emit(self, type: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        event = EventLine(
            seq=self.next_seq,
            ts=self._clock(),
            type=type,
            run_id=self.run_id,
            data=dict(data or {}),
        ).dump()
        self.ledger.append(event)
        self.next_seq += 1
        return event


def strip_volatile(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: strip_volatile(item)
            for key, item in value.items()
            if not (isinstance(key, str) and is_volatile(key))
        }
    if isinstance(value, (list, tuple)):
        return [strip_volatile(item) for item in value]
    return value


def normalize_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event without ts/run_id and without volatile keys inside ``data``.

    Idempotent, so a normalized feed can be normalized again (compare accepts both).
    """
    out = {key: value for key, value in event.items() if key not in TOP_LEVEL_DROPPED}
    if "data" in out:
        out["data"] = strip_volatile(out["data"])
    return out


def normalized_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, canonical normalized line) for each event of a feed."""
    for number, event in iter_jsonl(path, error=EventCompareError):
        yield number, dumps_line(normalize_event(event))


def normalize_file(source: Path, target: Path | None = None) -> bytes:
    """Normalize a feed; write it atomically to ``target`` when given. Returns the bytes."""
    payload = b"".join(line for _, line in normalized_lines(source))
    if target is not None:
        write_bytes_atomic(target, payload)
    return payload
