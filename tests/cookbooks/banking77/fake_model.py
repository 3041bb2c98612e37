"""An OpenAI-compatible model server that stands in for a local one (llama.cpp, Ollama)
in the Banking77 real-model tests: it lists its models, classifies, and proposes.

What it answers depends on the request's ``model``, so one server plays every part:

- ``classifier``: answers a Banking77 label, with token usage and no cost (as a local
  server does); ``slow-classifier`` takes ``SLOW_SECONDS`` to do so;
  ``flaky-classifier`` answers ``FLAKY_ANSWERS`` calls, then HTTP 503 (a server that
  went down mid-run) until ``flaky_back`` is set;
- ``proposer``: a fenced revision of the current text, ``finish_reason: "stop"``;
- ``proposer-cut``: every other call is cut at max_tokens before any fence
  (``finish_reason: "length"``), the others are like ``proposer``;
- ``proposer-echo``: a short answer that opens a fence and stops (``"stop"``).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MODELS = (
    "classifier",
    "slow-classifier",
    "flaky-classifier",
    "proposer",
    "proposer-cut",
    "proposer-echo",
)
SLOW_SECONDS = 1.5
FLAKY_ANSWERS = 4
LABEL = "card_arrival"
PROMPT_TOKENS, ANSWER_TOKENS = 40, 2


@dataclass
class FakeModel:
    url: str = ""  # the /v1 root
    bodies: list[dict[str, Any]] = field(default_factory=list)
    proposals: int = 0
    flaky_calls: int = 0
    flaky_back: bool = False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": name, "object": "model"} for name in MODELS]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            self.bodies.append(body)
            model = body["model"]
            if model == "flaky-classifier":
                self.flaky_calls += 1
                if self.flaky_calls > FLAKY_ANSWERS and not self.flaky_back:
                    error = {"error": {"message": "Loading model", "code": 503}}
                    return JSONResponse(error, status_code=503)
            if model.endswith("classifier"):
                if model == "slow-classifier":
                    await asyncio.sleep(SLOW_SECONDS)
                return _completion(LABEL, "stop", PROMPT_TOKENS, ANSWER_TOKENS)
            self.proposals += 1
            prompt = body["messages"][-1]["content"]
            if model == "proposer-echo":
                return _completion("```\nYou are", "stop", 900, 4)
            if model == "proposer-cut" and self.proposals % 2 == 1:
                return _completion(
                    "Looking at the examples with low scores, the", "length", 900, 16
                )
            current = _current_text(prompt)
            revised = f"{current}\n- {LABEL}: card arrival, card not arrived, where is my card"
            return _completion(f"```\n{revised}\n```", "stop", 900, 120)

        return app


def _current_text(prompt: str) -> str:
    match = re.search(r"# Current text\n\n(`{3,})\n(.*?)\n\1\n", prompt, re.S)
    assert match, "the reflection prompt has no current text block"
    return match.group(2)


def _completion(content: str, finish: str, prompt_tokens: int, tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        },
    }


@contextmanager
def fake_model() -> Iterator[FakeModel]:
    """The fake model served on a free 127.0.0.1 port for the duration."""
    model = FakeModel()
    server = uvicorn.Server(
        uvicorn.Config(model.app(), host="127.0.0.1", port=0, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake model server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    model.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield model
    finally:
        server.should_exit = True
        thread.join(5)


def stopped_server_url() -> str:
    """The /v1 root of a model server that is not running (a port nobody listens on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
