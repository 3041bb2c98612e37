"""Serve an ASGI app in-process: uvicorn in a daemon thread, lifespan included."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, ClassVar

import uvicorn

from gepa_cli.errors import ContainerError


class LifespanWatch:
    """Pass an app through, remembering why its lifespan startup failed.

    uvicorn would print the startup traceback and stop; the launcher reports it as one
    `ContainerError` instead (and writes the traceback to the container log).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.startup_error: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watch(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.startup_error = str(message.get("message") or "").strip() or "failed"
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, watch)


class _QuietStartupFailure(logging.Filter):
    """Drop uvicorn's own "startup failed" line in our server threads: we report it."""

    threads: ClassVar[set[int]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.thread in self.threads and record.getMessage().startswith("Application startup")
        )


logging.getLogger("uvicorn.error").addFilter(_QuietStartupFailure())


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


class UvicornThread:
    """Serve an ASGI app on 127.0.0.1 in a daemon thread (tests reuse this directly)."""

    def __init__(self, app: Any, *, log_level: str = "warning", lifespan: bool = True) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))  # bound before start: no race for the port
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.watch = LifespanWatch(app)
        # "auto": an app without lifespan support is served as it is
        config = uvicorn.Config(
            self.watch,
            log_level=log_level,
            lifespan="auto" if lifespan else "off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        _QuietStartupFailure.threads.add(threading.get_ident())
        try:
            self.server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start(), not lost in a thread
            self.error = exc
        finally:
            _QuietStartupFailure.threads.discard(threading.get_ident())

    def start(self, timeout_seconds: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout_seconds
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                if self.watch.startup_error is not None:
                    raise ContainerError(
                        "the in-process container app failed at startup: "
                        + last_line(self.watch.startup_error),
                        hint="fix the app's startup (lifespan) code",
                        startup_error=self.watch.startup_error,
                    )
                why = f" ({type(self.error).__name__}: {self.error})" if self.error else ""
                raise ContainerError(
                    f"the in-process container did not start on {self.url} within "
                    f"{timeout_seconds:g}s{why}",
                    hint="check that the app is an ASGI application, or raise "
                    "container.startup_timeout_seconds if its startup is slow",
                )
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
