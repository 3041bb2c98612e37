"""Helpers for the proposer tests: a scripted chat server, an in-memory cache, a request."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

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


class ChatServer:
    """Answers each request with the next scripted `Reply` and records what it got."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.port = 0
        self.app = FastAPI()
        self.app.add_api_route("/{path:path}", self._handle, methods=["POST", "GET"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()

    async def _handle(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        self.requests.append(Recorded(request.url.path, dict(request.headers), payload))
        reply = (
            self.replies.popleft()
            if self.replies
            else Reply(500, {"error": {"message": "test server: no reply scripted"}})
        )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if isinstance(reply.body, str):
            return PlainTextResponse(reply.body, reply.status, headers=reply.headers)
        return JSONResponse(reply.body, reply.status, headers=reply.headers)
