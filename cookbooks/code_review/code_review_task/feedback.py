"""Feedback for one review, written for whoever edits the checklist next (a person, a
model, or the offline proposer, which reads these exact line shapes).

One line per outcome, after a summary line::

    Found: sql-injection at app/db.py:14 [checklist item 3 "SQL built by f-strings"]: <defect>
    Missed: resource-leak at app/db.py:9: <description of the defect>
    False alarm: unchecked-error at app/db.py:20 [checklist item 2 "Check errors"]: <why>
    Duplicate: sql-injection at app/db.py:15 [checklist item 5 "..."]: repeats the finding at
    line 14

The ``[checklist item N "text"]`` part appears when the finding said which item it
follows (the offline reviewer always does; a model may).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .scoring import LINE_TOLERANCE, Defect, Finding, Match, Score

ITEM_QUOTE_CHARS = 100


def _by(f: Finding, items: Mapping[int, str]) -> str:
    if f.item is None or f.item not in items:
        return ""
    text = items[f.item]
    if len(text) > ITEM_QUOTE_CHARS:
        text = text[: ITEM_QUOTE_CHARS - 3] + "..."
    return f" [checklist item {f.item} {json.dumps(text)}]"


def _at(x: Finding | Defect) -> str:
    return f"{x.category} at {x.file}:{x.line}"


def review_feedback(defects: Sequence[Defect], m: Match, s: Score, items: Mapping[int, str]) -> str:
    c = s.counts
    head = (
        f"Reward {s.reward:.2f}: precision {s.objectives['precision']:.2f}, "
        f"recall {s.objectives['recall']:.2f}, {c['false_alarms']} false alarm(s), "
        f"{c['duplicates']} duplicate(s); {len(defects)} labelled defect(s), "
        f"line tolerance {LINE_TOLERANCE}."
    )
    lines = [head]
    if not defects and not c["findings"]:
        lines.append("Clean diff and no findings: right.")
    for f, d in m.matched:
        lines.append(f"Found: {_at(d)}{_by(f, items)}: {d.description}")
    for d in m.missed:
        lines.append(f"Missed: {_at(d)}: {d.description}")
    for f, why in m.false_alarms:
        lines.append(f"False alarm: {_at(f)}{_by(f, items)}: {why}")
    for f, original in m.duplicates:
        lines.append(
            f"Duplicate: {_at(f)}{_by(f, items)}: repeats the finding at line {original.line}"
        )
    return "\n".join(lines)


def malformed_feedback(reason: str, defects: Sequence[Defect]) -> str:
    lines = [
        f"Reward 0.00: the answer could not be scored: {reason}. Answer with one JSON "
        'object: {"findings": [{"file": "...", "line": 12, "category": "...", '
        '"message": "..."}]}.'
    ]
    lines += [f"Missed: {_at(d)}: {d.description}" for d in defects]
    return "\n".join(lines)
