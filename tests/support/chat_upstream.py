"""A local OpenAI-compatible chat model for tests: it answers with what it was sent.

The answer is ``system=<system message>|user=<last user message>`` so a test can see
the injection; usage is 7 prompt and 3 completion tokens a call. A last user message
``fail:<status>`` makes it answer that HTTP status with an OpenAI error body, and
``plain:<status>`` the same status with a plain-text body. Streams send the answer word
by word, then a usage chunk when ``stream_options.include_usage`` is set, then [DONE].
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
SEEN: list[dict[str, Any]] = []  # request bodies and headers, for tests in this process


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


def answer_for(messages: list[dict[str, Any]]) -> str:
    system = next((_text(m.get("content")) for m in messages if m.get("role") == "system"), "")
    user = next(
        (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return f"system={system}|user={user}"


async def completions(request: Request) -> Response:
    body = orjson.loads(await request.body())
    SEEN.append({"body": body, "authorization": request.headers.get("authorization")})
    messages = body["messages"]
    last = _text(messages[-1].get("content"))
    if last.startswith("fail:"):
        status = int(last.split(":")[1])
        error = {
            "error": {"message": f"upstream says {status}", "type": "server_error", "code": "boom"}
        }
        return Response(orjson.dumps(error), status_code=status, media_type="application/json")
    if last.startswith("plain:"):
        return Response("the model fell over", status_code=int(last.split(":")[1]))
    answer = answer_for(messages)
    base = {"id": "chatcmpl-test", "created": 0, "model": body.get("model") or "test-model"}
    if body.get("stream"):
        return StreamingResponse(_chunks(base, answer, body), media_type="text/event-stream")
    completion = {
        **base,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    return Response(orjson.dumps(completion), media_type="application/json")


async def _chunks(base: dict[str, Any], answer: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
    words = answer.split("|")
    for index, word in enumerate(words):
        piece = word if index == 0 else "|" + word
        chunk = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    final = {**base, "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}  # fmt: skip
    yield b"data: " + orjson.dumps(final) + b"\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**base, "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
        yield b"data: " + orjson.dumps(usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


class ThreadServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, asgi: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serving(asgi: Any, port: int) -> Iterator[ThreadServer]:
    server = ThreadServer(asgi, port).start()
    try:
        yield server
    finally:
        server.stop()
