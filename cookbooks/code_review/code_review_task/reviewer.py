"""The ``offline`` policy: a deterministic reviewer driven only by the checklist.

Every checklist item switches on the detectors its wording cues (narrow ones replacing
the broad one of their family, and only detectors of the item's category when it is
scoped, see :mod:`.detectors`). Every switched-on detector scans the added lines of
each file of the diff; each hit is a finding on that line, attributed to the first item
that asked for it. Vague or missing items make a poor reviewer; that is the point.
"""

from __future__ import annotations

import json
from typing import Any

from .detectors import DETECTORS, Detector
from .diffs import Diff
from .wording import Item, items


def detectors_for(item: Item) -> list[Detector]:
    cued = [
        d
        for d in DETECTORS
        if (item.category is None or d.category == item.category) and d.cued_by(item.words)
    ]
    ids = {d.id for d in cued}
    return [d for d in cued if not ids.intersection(d.narrower)]


def review(checklist: str, diff: Diff) -> list[dict[str, Any]]:
    """The findings, in checklist order; one per (file, line, category)."""
    findings: list[dict[str, Any]] = []
    seen: set[tuple[str, int, str]] = set()
    for item in items(checklist):
        for detector in detectors_for(item):
            for f in diff.files:
                for line in detector.scan(f):
                    key = (f.path, line, detector.category)
                    if key in seen:
                        continue
                    seen.add(key)
                    findings.append(
                        {
                            "file": f.path,
                            "line": line,
                            "category": detector.category,
                            "message": detector.message,
                            "item": item.number,
                        }
                    )
    return findings


def answer(checklist: str, diff: Diff) -> str:
    """The reviewer's answer as the JSON text a model would return."""
    return json.dumps({"findings": review(checklist, diff)}, indent=None)
