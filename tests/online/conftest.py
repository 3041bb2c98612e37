from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from online.support import UPSTREAM_KEY, UPSTREAM_KEY_ENV, OnlineService, online_service
from service.support import free_port
from support.chat_upstream import ThreadServer
from support.chat_upstream import app as upstream_app


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadServer]:
    server = ThreadServer(upstream_app, free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OnlineService]:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    with online_service(tmp_path) as running:
        yield running
