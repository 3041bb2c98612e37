"""Pair (c)'s proposer: pair (b)'s learned-cues proposer, careless a fixed share of the time.

For a share of requests (`CARELESS_SHARE`, drawn from a hash of the request: the current
text and the example ids shown, so the same request is always answered the same way)
the answer keeps the fixes for the examples shown but writes every other guidance line
back to its label's name alone, losing the cues learned for it: a model that rewrites a
long prompt around the examples in front of it and drops what it was not looking at.
The lines forgotten are those of labels the request's records neither expected nor
predicted, so the minibatch that produced the child cannot show the loss: such a child
wins its minibatch (it fixed what it was shown) and loses on validation, which covers
many more labels. `CARELESS_SHARE` is half: the share at which a loop that never
validates clearly loses at both 1,000 and 3,000 rollouts (bench/quality_banking77_careless.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from quality.core import ProposeFn, use_cookbook
from quality.learned_cues import LearnedCuesProposer, expected_label

CARELESS_SHARE = 0.5


def request_draw(current_text: str, records: Sequence[Mapping[str, Any]]) -> float:
    """A number in [0, 1) drawn from the request alone."""
    ids = "\0".join(str(r.get("example_id", "")) for r in records)
    h = hashlib.sha256(f"{current_text}\0\0{ids}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


class ForgetfulProposer:
    def __init__(self, inner: ProposeFn, share: float = CARELESS_SHARE) -> None:
        use_cookbook("banking77")
        self.inner, self.share = inner, share

    def __call__(self, current_text: str, records: Sequence[Mapping[str, Any]]) -> str:
        from banking77_task.guidance import PromptDoc, label_words

        # the inner proposer sees every request, careless or not (its statistics too)
        new_text = self.inner(current_text, records)
        if request_draw(current_text, records) >= self.share:
            return new_text
        shown = {expected_label(r) for r in records} | {str(r.get("output")) for r in records}
        doc = PromptDoc.parse(new_text)
        for line in doc.guidance():
            if line.label not in shown:
                line.cues[:] = [" ".join(label_words(line.label))]
        return doc.render()


def careless_learned_cues() -> ProposeFn:
    """A fresh proposer for one run (the learned-cues state is per run)."""
    return ForgetfulProposer(LearnedCuesProposer())
