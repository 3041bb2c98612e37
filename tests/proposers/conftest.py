"""A scripted OpenAI-compatible server on 127.0.0.1, and a small in-memory cache."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from gepa_cli.runtime.boundary import CacheAction, LiveCall, always_cacheable

from .support import Recorded, Reply


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


@pytest.fixture(scope="session")
def _chat_server_session() -> Iterator[ChatServer]:
    chat = ChatServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    chat.port = sock.getsockname()[1]
    config = uvicorn.Config(
        chat.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test chat server did not start")
        time.sleep(0.01)
    yield chat
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture
def chat_server(_chat_server_session: ChatServer) -> Iterator[ChatServer]:
    _chat_server_session.reset()
    yield _chat_server_session
    _chat_server_session.reset()


class MemoryCache:
    """Readwrite semantics in memory: hits served, misses called live and stored."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def through(
        self,
        boundary: str,
        request: Mapping[str, Any],
        live: LiveCall,
        *,
        cacheable: Callable[[Mapping[str, Any]], bool] = always_cacheable,
    ) -> tuple[dict[str, Any], CacheAction]:
        import json

        self.requests.append((boundary, dict(request)))
        key = (boundary, json.dumps(request, sort_keys=True))
        if key in self.entries:
            return self.entries[key], "hit"
        response = await live()
        if cacheable(response):
            self.entries[key] = response
            return response, "write"
        return response, "live"


@pytest.fixture
def memory_cache() -> MemoryCache:
    return MemoryCache()
