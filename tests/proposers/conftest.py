"""A scripted OpenAI-compatible server on 127.0.0.1, and a small in-memory cache."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from support.memory_cache import MemoryCache

from .support import ChatServer


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


@pytest.fixture
def memory_cache() -> MemoryCache:
    return MemoryCache()
