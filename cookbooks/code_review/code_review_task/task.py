"""One rollout, without HTTP: the checklist and a dataset row in, a scored review out.

The container (``container.py``) is a thin layer over :func:`review`; tests call it
directly. ``step`` records the trace (the kit's ``Rollout.step``) when given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import chat, reviewer
from .data import Dataset, Example, load
from .feedback import malformed_feedback, review_feedback
from .scoring import FAILED, MalformedAnswer, match, parse_answer, score
from .wording import items

BACKENDS = ("offline", "openai_chat")
Step = Callable[..., Any]


class RowError(ValueError):
    """The dataset row names no diff this container knows."""


@dataclass
class Outcome:
    reward: float
    objectives: dict[str, float]
    feedback: str
    output: dict[str, Any]
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0}
    )


def example_for(row: Mapping[str, Any], dataset: Dataset | None = None) -> Example:
    """The labelled example behind a row; labels never travel in the row itself."""
    ds = dataset if dataset is not None else load()
    example_id = str(row.get("example_id", ""))
    found = ds.by_id(example_id)
    if found is None:
        raise RowError(f"dataset_row.example_id {example_id!r} is not a diff of this dataset")
    return found


def grade(checklist: str, example: Example, answer: str) -> Outcome:
    """Score a policy's answer text against the example's labels."""
    numbered = {item.number: item.text for item in items(checklist)}
    try:
        findings = parse_answer(answer)
    except MalformedAnswer as exc:
        return Outcome(
            FAILED.reward,
            dict(FAILED.objectives),
            malformed_feedback(str(exc), example.defects),
            {"findings": [], "malformed": str(exc)},
        )
    m = match(findings, example.defects, example.diff)
    s = score(m, len(findings), len(example.defects))
    return Outcome(
        s.reward,
        s.objectives,
        review_feedback(example.defects, m, s, numbered),
        {
            "findings": [f.model_dump(exclude_none=True) for f in findings],
            "counts": s.counts,
        },
    )


async def review(
    checklist: str,
    row: Mapping[str, Any],
    policy: Any,
    *,
    client: httpx.AsyncClient | None = None,
    step: Step | None = None,
    dataset: Dataset | None = None,
) -> Outcome:
    """Run the policy on the row's diff with ``checklist`` and grade its answer."""
    example = example_for(row, dataset)
    backend = (
        getattr(policy, "backend", None)
        or (policy.get("backend") if isinstance(policy, Mapping) else None)
        or "offline"
    )
    if backend == "offline":
        answer = reviewer.answer(checklist, example.diff)
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        messages = None
    elif backend == "openai_chat":
        if client is None:
            raise chat.PolicySettingsError("the openai_chat backend needs an HTTP client")
        asked = await chat.ask(
            client,
            policy,
            chat.messages_for(checklist, example.title, example.language, example.diff),
        )
        answer, usage, messages = asked.text, asked.usage, asked.messages
    else:
        raise chat.PolicySettingsError(f"policy.backend {backend!r} is not one of {BACKENDS}")
    outcome = grade(checklist, example, answer)
    outcome.usage = usage
    if step is not None:
        step(
            observation=f"diff {example.id} ({len(example.diff.files)} file(s))",
            action=answer,
            reward=outcome.reward,
            messages=messages,
            info=outcome.output.get("counts"),
        )
    return outcome
