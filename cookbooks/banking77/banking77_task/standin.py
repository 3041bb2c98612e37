"""An offline stand-in for an OpenAI-compatible chat model, for Banking77 only.

Not a language model: it answers ``POST /v1/chat/completions`` by running the cookbook's
offline classifier (`policy.offline_classify`) with the guidance lines of the system
message (``- label: cue, cue``) on the customer's query, and replies with the label it
picks (``unknown`` when no cue matches). So the answer depends on the system prompt
exactly the way the offline policy's does, and a better prompt gets better answers: what
online GEPA needs to show it learns, with no model and no key.

The query is the user message's ``Customer message: ...`` line when there is one (the
shape `policy.chat_messages` and the traffic driver send, which a real model also
understands), else the whole last user message. Usage counts words as tokens. Streams
send the label in one chunk, then a usage chunk when asked, then ``[DONE]``.

    python -m banking77_task.standin --port 8078     # from cookbooks/banking77
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .guidance import PromptDoc
from .policy import offline_classify

MODEL = "banking77-standin"
_CUSTOMER = re.compile(r"Customer message:\s*(.*?)(?:\n\n|$)", re.S)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def answer(messages: list[dict[str, Any]]) -> tuple[str, int]:
    """(label, prompt words) for a chat: guidance from the system messages, query from
    the last user message."""
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    user = next(
        (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    match = _CUSTOMER.search(user)
    query = match.group(1).strip() if match else user
    labels = [line.label for line in PromptDoc.parse(system).guidance()]
    label, _ = offline_classify(system, query, labels)
    return label, len(system.split()) + len(user.split())


def _error(status: int, message: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": "invalid_request"}}  # fmt: skip
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def completions(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
        messages = body["messages"]
        if not isinstance(messages, list):
            raise TypeError("messages must be a list")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return _error(400, f"not a chat-completions request: {exc}")
    label, prompt_tokens = answer(messages)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 1,
             "total_tokens": prompt_tokens + 1}  # fmt: skip
    base = {"id": f"standin-{time.monotonic_ns()}", "created": int(time.time()),
            "model": body.get("model") or MODEL}  # fmt: skip
    if body.get("stream"):
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _stream(base, label, usage, wants_usage), media_type="text/event-stream"
        )
    completion = {
        **base,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": label},
                     "finish_reason": "stop"}],
        "usage": usage,
    }  # fmt: skip
    return Response(orjson.dumps(completion), media_type="application/json")


async def _stream(
    base: dict[str, Any], label: str, usage: dict[str, int], wants_usage: bool
) -> AsyncIterator[bytes]:
    chunk = {**base, "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": label},
                          "finish_reason": "stop"}]}  # fmt: skip
    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    if wants_usage:
        tail = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        yield b"data: " + orjson.dumps(tail) + b"\n\n"
    yield b"data: [DONE]\n\n"


async def models(_request: Request) -> Response:
    return Response(orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}),
                    media_type="application/json")  # fmt: skip


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8078)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
