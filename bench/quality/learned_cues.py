"""Pair (b)'s proposer: cue words learned from what it is shown, never removed.

A deliberately different deterministic proposer for the Banking77 prompt format (the
guidance lines ``- label: cue, cue``). Where the cookbook's proposer ranks a query's
words by how few labels already use them and also drops cues, this one

- adds at most `CUES_PER_EXAMPLE` cue words per wrong example, on the expected label's
  line, and never removes a cue;
- chooses them by its own word statistics: for every (word, label) the number of
  distinct examples it has been shown in this run (in the records of its requests,
  right or wrong) whose query holds the word and whose expected label is that label.
  It adds the query's words most specific to the expected label (the share of the
  word's examples that carry it), none below `MIN_SHARE`, ties to the better-supported
  and then the longer word.

State, determinism and resume. The statistics are a fold over the *set* of examples
shown (keyed by example id: an example seen again adds nothing), so they depend on
which examples were shown, never on how often or in which order; the answer to a
request is a function of the request and that set. One instance serves one run (the
runner makes a fresh one for every engine x budget x seed), and every engine here calls
its proposer serially in an order its seed fixes, so the same run gives the same
answers and the same result. A resumed run rebuilds the state by folding the requests
it recorded before the checkpoint (`LearnedCuesProposer.replayed`): folding a set again
gives the same state, whatever was repeated. Run as a gepa-cli proposer command (one
process per call) it would have to keep the set in a file of the run; and a proposer
cache answers a repeated request as it was first answered, which this proposer would
not if it learned something in between, so it belongs with the cache off.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from quality.core import use_cookbook

CUES_PER_EXAMPLE = 2
MIN_SHARE = 0.5
_WRONG = re.compile(r"Wrong: predicted .+?, expected (?P<expected>.+?)\. Query: ")
_RIGHT = re.compile(r"^Correct: (?P<expected>.+?)\.$")


def expected_label(record: Mapping[str, Any]) -> str | None:
    feedback = str(record.get("feedback") or "")
    m = _WRONG.search(feedback) or _RIGHT.match(feedback)
    if m:
        return m.group("expected")
    inputs = record.get("inputs")
    label = inputs.get("label") if isinstance(inputs, Mapping) else None
    return str(label) if label else None


def query_of(record: Mapping[str, Any]) -> str:
    inputs = record.get("inputs")
    if isinstance(inputs, Mapping) and isinstance(inputs.get("query"), str):
        return str(inputs["query"])
    m = re.search(r"Query: (.*)$", str(record.get("feedback") or ""), re.S)
    return m.group(1).strip() if m else ""


def is_wrong(record: Mapping[str, Any]) -> bool:
    try:
        return float(record.get("score", 0.0)) < 1.0
    except (TypeError, ValueError):
        return True


class LearnedCuesProposer:
    def __init__(self) -> None:
        use_cookbook("banking77")
        self.seen: set[str] = set()
        # word stem -> expected label -> distinct examples shown
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    @classmethod
    def replayed(cls, requests: Iterable[Sequence[Mapping[str, Any]]]) -> LearnedCuesProposer:
        """The state after these requests' records (a run's, up to a checkpoint)."""
        proposer = cls()
        for records in requests:
            proposer.observe(records)
        return proposer

    def observe(self, records: Sequence[Mapping[str, Any]]) -> None:
        from banking77_task.guidance import is_content_word, stem, surface_words

        for record in records:
            example_id = str(record.get("example_id") or "")
            expected, query = expected_label(record), query_of(record)
            if not example_id or example_id in self.seen or not expected or not query:
                continue
            self.seen.add(example_id)
            for word in {stem(w) for w in surface_words(query) if is_content_word(w)}:
                self.counts[word][expected] += 1

    def __call__(self, current_text: str, records: Sequence[Mapping[str, Any]]) -> str:
        from banking77_task.guidance import (
            GuidanceLine,
            PromptDoc,
            cue_keys,
            is_content_word,
            stem,
            surface_words,
        )

        self.observe(records)
        doc = PromptDoc.parse(current_text)
        for record in records:
            expected, query = expected_label(record), query_of(record)
            if not is_wrong(record) or not expected or not query:
                continue
            line = doc.line_for(expected)
            if line is None:
                line = GuidanceLine(expected, [])
                doc.lines.append(line)
            have = cue_keys(line.cues)
            options: dict[str, tuple[float, int, str]] = {}
            for word in surface_words(query):
                key = stem(word)
                if not is_content_word(word) or (key,) in have or key in options:
                    continue
                seen = self.counts.get(key) or Counter()
                share = seen[expected] / max(1, sum(seen.values()))
                if share >= MIN_SHARE:
                    options[key] = (share, seen[expected], word)
            ranked = sorted(options.values(), key=lambda o: (-o[0], -o[1], -len(o[2]), o[2]))
            line.cues.extend(word for _, _, word in ranked[:CUES_PER_EXAMPLE])
        return doc.render()
