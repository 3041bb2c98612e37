"""Compare two event feeds after normalizing both (CI parity between runs)."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.events import normalized_lines

MISSING = object()


class CompareResult(BaseModel):
    identical: bool
    left: str
    right: str
    left_lines: int
    right_lines: int
    # 1-based line number of the first difference (None when identical)
    line: int | None = None
    left_line: str | None = None
    right_line: str | None = None
    # dotted paths of the fields that differ on that line, e.g. data.scores[2]
    differing_keys: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        if self.identical:
            return f"identical: {self.left_lines} events"
        if self.left_line is None or self.right_line is None:
            shorter, n = (
                ("left", self.left_lines) if self.left_line is None else ("right", self.right_lines)
            )
            head = f"different at line {self.line}: the {shorter} feed ends after {n} events"
        else:
            keys = ", ".join(self.differing_keys) or "(formatting only)"
            head = f"different at line {self.line}: {keys}"
        left = self.left_line or "<end of feed>"
        right = self.right_line or "<end of feed>"
        return f"{head}\n  left:  {left}\n  right: {right}"


def differing_keys(left: Any, right: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (a missing key counts as a difference)."""
    if isinstance(left, dict) and isinstance(right, dict):
        out: list[str] = []
        for key in sorted(set(left) | set(right)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(differing_keys(left.get(key, MISSING), right.get(key, MISSING), path))
        return out
    if isinstance(left, list) and isinstance(right, list):
        out = []
        for index, (a, b) in enumerate(zip_longest(left, right, fillvalue=MISSING)):
            out.extend(differing_keys(a, b, f"{prefix}[{index}]"))
        return out
    # 1 and 1.0 or True and 1 compare equal in Python but not as JSON text
    if type(left) is not type(right) or left != right:
        return [prefix or "(line)"]
    return []


def feed_path(path: Path) -> Path:
    """A run directory stands for its events.jsonl."""
    return path / layout.EVENTS if path.is_dir() else path


def compare_feeds(left: Path, right: Path) -> CompareResult:
    """Normalize both feeds and report the first differing line, reading both fully.

    Bad lines anywhere in either feed raise `EventCompareError`, so a diff is never
    reported for a feed that could not have been read to the end.
    """
    left, right = feed_path(left), feed_path(right)
    left_count = right_count = 0
    first: tuple[int, bytes | None, bytes | None] | None = None
    pairs = zip_longest(normalized_lines(left), normalized_lines(right))
    for index, (a, b) in enumerate(pairs, start=1):
        if a is not None:
            left_count += 1
        if b is not None:
            right_count += 1
        a_line = a[1] if a is not None else None
        b_line = b[1] if b is not None else None
        if first is None and a_line != b_line:
            first = (index, a_line, b_line)
    if first is None:
        return CompareResult(
            identical=True,
            left=str(left),
            right=str(right),
            left_lines=left_count,
            right_lines=right_count,
        )
    index, a_line, b_line = first
    keys = (
        differing_keys(orjson.loads(a_line), orjson.loads(b_line))
        if a_line is not None and b_line is not None
        else []
    )
    return CompareResult(
        identical=False,
        left=str(left),
        right=str(right),
        left_lines=left_count,
        right_lines=right_count,
        line=index,
        left_line=a_line.decode().rstrip("\n") if a_line is not None else None,
        right_line=b_line.decode().rstrip("\n") if b_line is not None else None,
        differing_keys=keys,
    )
