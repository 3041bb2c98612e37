"""The offline proposer: a deterministic stand-in for an LLM that rewrites the prompt.

Run as ``python -m banking77_task.propose`` with the JSON reflection request on stdin
(``[proposer] backend = "command"``, ``input = "json"``). It reads only the examples of
the reflective dataset it is given. For every wrong example it

- adds the query's most distinctive words as cues on the expected label's line, and
- drops from the wrongly predicted label's line the cues the query matched, unless
  they are that label's own name words (the cues a label should always keep),

then prints the whole new prompt inside one fenced block. With nothing to fix it prints
the text unchanged, which the optimizer records as an unchanged proposal.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .guidance import (
    GuidanceLine,
    PromptDoc,
    cue_key,
    cue_keys,
    is_content_word,
    label_words,
    stem,
    surface_words,
    tokens,
)

CUES_PER_EXAMPLE = 2
MAX_CUES_PER_LABEL = 40
# Words that occur in queries of every intent; as cues they would pull unrelated queries.
GENERIC_WORDS = frozenset(
    [
        "take",
        "make",
        "ask",
        "possible",
        "using",
        "use",
        "put",
        "get",
        "give",
        "see",
        "go",
        "going",
        "yesterday",
        "day",
        "days",
        "week",
        "weeks",
        "time",
        "times",
        "new",
        "old",
        "back",
        "something",
        "someone",
        "anything",
        "thing",
        "things",
        "send",
        "sent",
        "sending",
        "money",
        "account",
        "app",
        "bank",
        "way",
        "said",
        "says",
        "keep",
        "kept",
        "try",
        "tried",
        "trying",
        "told",
        "since",
        "long",
        "last",
        "next",
        "first",
        "again",
        "already",
        "ago",
        "done",
    ]
)
_WRONG = re.compile(r"Wrong: predicted (?P<predicted>.+?), expected (?P<expected>.+?)\. Query: ")


def _labels_of(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(expected, predicted) from the feedback, falling back to the row and the output."""
    m = _WRONG.search(str(record.get("feedback") or ""))
    if m:
        return m.group("expected"), m.group("predicted")
    inputs = record.get("inputs") or {}
    expected = (
        inputs.get("label") or inputs.get("category") if isinstance(inputs, Mapping) else None
    )
    output = record.get("output")
    return (str(expected) if expected else None), (str(output) if output else None)


def _query_of(record: Mapping[str, Any]) -> str:
    inputs = record.get("inputs") or {}
    if isinstance(inputs, Mapping):
        for key in ("query", "text"):
            if isinstance(inputs.get(key), str):
                return str(inputs[key])
    m = re.search(r"Query: (.*)$", str(record.get("feedback") or ""), re.S)
    return m.group(1).strip() if m else ""


def _is_wrong(record: Mapping[str, Any]) -> bool:
    try:
        return float(record.get("score", 0.0)) < 1.0
    except (TypeError, ValueError):
        return True


def _fix_one(doc: PromptDoc, query: str, expected: str, predicted: str | None) -> None:
    lines = doc.guidance()
    target = doc.line_for(expected)
    if target is None:
        target = GuidanceLine(expected, label_words(expected))
        doc.lines.append(target)
        lines.append(target)
    # How many labels already use a word as a cue: a word nobody else uses separates best.
    usage: dict[tuple[str, ...], int] = {}
    for line in lines:
        for k in cue_keys(line.cues):
            usage[k] = usage.get(k, 0) + 1
    have = cue_keys(target.cues)
    words = [
        w
        for w in dict.fromkeys(surface_words(query))
        if is_content_word(w) and w not in GENERIC_WORDS
    ]
    fresh = [w for w in words if (stem(w),) not in have]
    fresh.sort(key=lambda w: (usage.get((stem(w),), 0), -len(w), w))
    room = max(0, MAX_CUES_PER_LABEL - len(target.cues))
    target.cues.extend(fresh[: min(CUES_PER_EXAMPLE, room)])

    wrong = doc.line_for(predicted) if predicted and predicted != expected else None
    if wrong is not None:
        q = tokens(query)
        name = label_words(wrong.label)
        own = {(stem(w),) for w in name} | {cue_key(" ".join(name))}
        keep = []
        for cue in wrong.cues:
            k = cue_key(cue)
            hit = bool(k) and any(q[i : i + len(k)] == k for i in range(len(q) - len(k) + 1))
            if not hit or k in own:
                keep.append(cue)
        wrong.cues[:] = keep


def propose_text(current_text: str, reflective_dataset: Sequence[Mapping[str, Any]]) -> str:
    doc = PromptDoc.parse(current_text)
    for record in reflective_dataset:
        if not _is_wrong(record):
            continue
        expected, predicted = _labels_of(record)
        query = _query_of(record)
        if expected and query:
            _fix_one(doc, query, expected, predicted)
    return doc.render()


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text}\n{ticks}\n"


def main() -> int:
    raw = sys.stdin.read()
    try:
        request = json.loads(raw)
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
