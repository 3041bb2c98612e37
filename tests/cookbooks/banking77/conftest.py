"""Put the cookbook on sys.path, as the optimizer does, and share small servers."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "banking77"
if str(COOKBOOK) not in sys.path:
    sys.path.insert(0, str(COOKBOOK))


def serve_in_thread(app: object) -> Iterator[str]:
    """Run an ASGI app on a free 127.0.0.1 port; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture()
def cookbook_dir() -> Path:
    return COOKBOOK


@pytest.fixture(scope="module")
def serve_app() -> object:
    """``serve_app(app)`` is a generator of the app's base URL (see `serve_in_thread`)."""
    return serve_in_thread
