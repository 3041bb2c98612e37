"""Helpers shared by the proposer tests: scripted replies, completions, a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gepa_cli.engine.types import ProposalRequest, ReflectiveRecord


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, a str as plain text
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    json: Any


def completion(
    content: str | None, prompt_tokens: int | None = 100, completion_tokens: int | None = 20
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if prompt_tokens is not None and completion_tokens is not None:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return body


CURRENT = "Classify the customer's message into one banking intent."


def make_request(current_text: str = CURRENT) -> ProposalRequest:
    return ProposalRequest(
        parent_id="c0",
        component="system_prompt",
        current_text=current_text,
        candidate={"system_prompt": current_text, "format": "Answer with the label."},
        records=[
            ReflectiveRecord(
                example_id="train-3",
                inputs={"text": "My card has not arrived yet", "lang": "en"},
                output="card_arrival",
                score=1.0,
                feedback="Correct.",
            ),
            ReflectiveRecord(
                example_id="train-7",
                inputs={"text": "How do I top up by bank transfer?"},
                output={"label": "top_up_failed"},
                score=0.0,
                feedback="Wrong: expected transfer_into_account.",
            ),
        ],
    )
