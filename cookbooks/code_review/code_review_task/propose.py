"""The offline proposer: a deterministic stand-in for an LLM that edits the checklist.

Run as ``python -m code_review_task.propose`` with the JSON reflection request on stdin
(``[proposer] backend = "command"``, ``input = "json"``). It reads nothing but the
feedback of the reflective dataset it is given (the ``Found:``, ``Missed:``,
``False alarm:`` and ``Duplicate:`` lines of :mod:`.feedback`). Each proposal fixes the
failure the examples show most of:

- more false alarms and duplicates than missed defects: it **narrows** the checklist
  item that raised the most of them (``MAX_NARROWED``): an item that also found real
  defects is rewritten as the descriptions of what it found (one item per defect),
  an item that found nothing is dropped;
- otherwise it **adds** items for missed defects, ``- <category>: <description of the
  miss>``, for the categories missed most often first, at most ``MAX_ADDED`` per
  proposal and ``MAX_PER_CATEGORY`` items per category.

It prints the whole new checklist in one fenced block; with nothing to change it prints
the text unchanged, which the optimizer records as an unchanged proposal.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import CATEGORIES
from .wording import items

MAX_ADDED = 2
MAX_NARROWED = 1
MAX_PER_CATEGORY = 3

_ITEM = r'(?: \[checklist item (?P<item>\d+)(?: "(?:[^"\\]|\\.)*")?\])?'
_AT = r"(?P<cat>[a-z-]+) at (?P<loc>\S+?:\d+)"
_FOUND = re.compile(rf"^Found: {_AT}{_ITEM}: (?P<desc>.+)$")
_MISSED = re.compile(rf"^Missed: {_AT}: (?P<desc>.+)$")
_NOISE = re.compile(rf"^(?:False alarm|Duplicate): {_AT}{_ITEM}: ")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S")


@dataclass
class Evidence:
    found: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    noise: Counter[int] = field(default_factory=Counter)
    missed: list[tuple[str, str]] = field(default_factory=list)


def read_feedback(records: Sequence[Mapping[str, Any]]) -> Evidence:
    ev = Evidence()
    for record in records:
        for line in str(record.get("feedback") or "").splitlines():
            if m := _FOUND.match(line):
                if m.group("item"):
                    pair = (m.group("cat"), m.group("desc").strip())
                    if pair not in ev.found[int(m.group("item"))]:
                        ev.found[int(m.group("item"))].append(pair)
            elif m := _MISSED.match(line):
                pair = (m.group("cat"), m.group("desc").strip())
                if m.group("cat") in CATEGORIES and pair not in ev.missed:
                    ev.missed.append(pair)
            elif (m := _NOISE.match(line)) and m.group("item"):
                ev.noise[int(m.group("item"))] += 1
    return ev


def _item_line(category: str, description: str) -> str:
    return f"- {category}: {description.rstrip('.')}"


def _narrow(lines: list[str], current: str, ev: Evidence) -> list[str]:
    """Rewrite (or drop) the item that raised the most false alarms and duplicates."""
    parsed = items(current)
    bullets = [i for i, line in enumerate(lines) if _BULLET.match(line)]
    by_line = dict(zip(bullets, parsed, strict=True))
    noisy = sorted((n for n in ev.noise if n <= len(parsed)), key=lambda n: (-ev.noise[n], n))
    narrowed = set(noisy[:MAX_NARROWED])
    out: list[str] = []
    for i, line in enumerate(lines):
        item = by_line.get(i)
        if item is None or item.number not in narrowed:
            out.append(line)
            continue
        found = ev.found.get(item.number, [])
        if not found:
            continue  # it only made noise: drop it
        rewritten = list(dict.fromkeys(_item_line(c, d) for c, d in found))
        if rewritten == [line.strip()] and ev.noise[item.number] > len(found):
            continue  # already as narrow as its hits allow, and still noisier than useful
        out.extend(rewritten)
    return out


def _add(lines: list[str], ev: Evidence) -> list[str]:
    """Append items for the missed defects, most-missed categories first."""
    out = list(lines)
    texts = {line.strip() for line in out}
    per_category = Counter(i.category for i in items("\n".join(out)) if i.category)
    misses = Counter(c for c, _ in ev.missed)
    added = 0
    for category, description in sorted(
        ev.missed, key=lambda p: (-misses[p[0]], CATEGORIES.index(p[0]))
    ):
        new = _item_line(category, description)
        if new in texts or per_category[category] >= MAX_PER_CATEGORY:
            continue
        out.append(new)
        texts.add(new)
        per_category[category] += 1
        added += 1
        if added == MAX_ADDED:
            break
    return out


def propose_text(current: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The new checklist: one kind of edit, for the failure the examples show most of."""
    ev = read_feedback(records)
    lines = current.rstrip("\n").splitlines()
    if sum(ev.noise.values()) > len(ev.missed) or not ev.missed:
        lines = _narrow(lines, current, ev)
    else:
        lines = _add(lines, ev)
    return "\n".join(lines) + "\n"


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text.rstrip()}\n{ticks}\n"


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
    except ValueError:
        print(
            'error: expected the JSON reflection request on stdin (set [proposer] input = "json")',
            file=sys.stderr,
        )
        return 2
    if not isinstance(request, dict):
        print("error: the reflection request must be a JSON object", file=sys.stderr)
        return 2
    current = request.get("current_text")
    if not isinstance(current, str):
        component, candidate = request.get("component"), request.get("candidate")
        if isinstance(candidate, dict) and isinstance(candidate.get(component), str):
            current = candidate[component]
        else:
            print("error: the request has no current_text (string)", file=sys.stderr)
            return 2
    dataset = request.get("reflective_dataset", [])
    if not isinstance(dataset, list) or not all(isinstance(r, dict) for r in dataset):
        print("error: reflective_dataset must be a list of objects", file=sys.stderr)
        return 2
    sys.stdout.write(_fence(propose_text(current, dataset)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
