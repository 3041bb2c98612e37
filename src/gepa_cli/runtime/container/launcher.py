"""Start a local container for a run and make sure it is gone afterwards.

``[container] app = "module:attr"`` (or an app object handed in from Python) serves an
ASGI app with uvicorn in a background thread, its lifespan included: startup code runs
before the first request, a startup failure is one `ContainerError`, and shutdown code
runs when the run ends. ``factory = true`` calls ``module:attr`` to build the app.
``command = [...]`` runs a child process in its own process group, so the whole group
(shell wrappers, workers) can be killed at once. ``url`` launches nothing. Shutdown
happens on normal exit, on exceptions, on SIGINT and SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx

from gepa_cli.artifacts.layout import CONTAINER_LOG
from gepa_cli.config.models import ContainerConfig
from gepa_cli.errors import ContainerError
from gepa_cli.runtime.container.inprocess import UvicornThread, last_line

LOG_NAME = CONTAINER_LOG
STOP_GRACE_SECONDS = 3.0
# A tiny process that outlives nothing: it blocks reading a pipe whose only writer is
# this process, and when that read ends (we exited, even by SIGKILL, which no handler
# sees) it stops the container's process group. Normal shutdowns kill it first.
WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
fd, group, grace = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
try:
    while os.read(fd, 1):
        pass
except OSError:
    pass
try:
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        time.sleep(0.05)
        os.killpg(group, 0)
    os.killpg(group, signal.SIGKILL)
except (ProcessLookupError, PermissionError):
    pass
"""
_Handler = Callable[[int, FrameType | None], Any] | int | None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    last = text.strip().splitlines()[-lines:]
    return " | ".join(last) if last else "(no output)"


def import_app(spec: str, base_dir: Path, *, factory: bool = False) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        target: Any = module
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise ContainerError(
            f"cannot load container app '{spec}' (looked in {base_dir} and sys.path): "
            f"{type(exc).__name__}: {exc}",
            hint="check [container].app: 'module:attribute', relative to the config's folder",
        ) from None
    if factory:
        if not callable(target):
            raise ContainerError(
                f"container app factory '{spec}' is not callable",
                hint="with factory = true, [container].app names a function that returns the app",
            )
        try:
            target = target()
        except Exception as exc:
            raise ContainerError(
                f"container app factory '{spec}' raised {type(exc).__name__}: {exc}",
                hint="fix the factory, or drop factory = true if the attribute is the app itself",
            ) from None
    if not callable(target):
        raise ContainerError(
            f"container app '{spec}' is {type(target).__name__}, not an ASGI application",
            hint="point [container].app at the app object (or at a factory with factory = true)",
        )
    return target


class ContainerLauncher:
    """``with ContainerLauncher(cfg, base_dir=..., log_dir=...) as url:`` (or ``async with``)."""

    def __init__(
        self,
        config: ContainerConfig,
        *,
        base_dir: Path,
        log_dir: Path,
        install_signal_handlers: bool = True,
        app: Any = None,
    ) -> None:
        self.config = config
        self.app_object = app  # an ASGI app handed in from Python, served like [container] app
        self.base_dir = Path(base_dir).resolve()
        self.log_dir = Path(log_dir)
        self.log_path = self.log_dir / LOG_NAME
        self.install_signal_handlers = install_signal_handlers
        self.url: str | None = config.url
        self.process: subprocess.Popen[bytes] | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self._watch_fd: int | None = None
        self._server: UvicornThread | None = None
        self._added_path = False
        self._previous: dict[int, _Handler] = {}
        self._lock = threading.RLock()

    @property
    def log_hint(self) -> str:
        """Where this container's own log is, for an error message that sends a user
        there (only a command container writes container.log)."""
        if self.config.command and self.app_object is None:
            return f"its log is {self.log_path}"
        if self.app_object is not None or self.config.app:
            return "it runs in-process: its log messages go to gepa-cli's stderr"
        return f"it was started outside gepa-cli at {self.config.url}: see its own log"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> str:
        atexit.register(self.stop)  # a normal interpreter exit without __exit__
        try:
            self._install_handlers()
            if self.app_object is not None:
                self.url = self._serve_app(self.app_object, "app object (given from Python)")
            elif self.config.app:
                self.url = self._start_app(self.config.app)
            elif self.config.command:
                self.url = self._start_command(self.config.command)
            assert self.url is not None
            return self.url
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Idempotent; safe from a signal handler, atexit and ``__exit__``."""
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None
            self._stop_watchdog()  # first: it must never signal a group id reused later
            if self.process is not None:
                self._kill_group(self.process)
                self.process = None
            if self._added_path:
                with contextlib.suppress(ValueError):
                    sys.path.remove(str(self.base_dir))
                self._added_path = False
            self._restore_handlers()
            atexit.unregister(self.stop)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        import asyncio

        # handlers can only be installed from the main thread: do that part here
        self._install_handlers()
        try:
            return await asyncio.to_thread(self.start)
        except BaseException:
            self._restore_handlers()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)
        self._restore_handlers()

    # -- app = "module:attr" ----------------------------------------------------------

    def _start_app(self, spec: str) -> str:
        if str(self.base_dir) not in sys.path:
            sys.path.insert(0, str(self.base_dir))
            self._added_path = True  # kept until stop(): the app may import lazily
        app = import_app(spec, self.base_dir, factory=self.config.factory)
        return self._serve_app(app, f"app '{spec}'")

    def _serve_app(self, app: Any, describe: str) -> str:
        self._server = UvicornThread(app)
        try:
            url = self._server.start(self.config.startup_timeout_seconds)
        except ContainerError as exc:
            startup_error = exc.details.get("startup_error")
            if startup_error:  # the whole traceback, where the command containers log too
                self.log_dir.mkdir(parents=True, exist_ok=True)
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(f"{describe} failed at startup:\n{startup_error}\n")
                raise ContainerError(
                    f"the in-process container {describe} failed at startup: "
                    + last_line(startup_error),
                    hint=f"fix its startup (lifespan) code; the traceback is in {self.log_path}",
                ) from None
            raise
        self._wait_healthy(url, describe=describe)
        return url

    # -- command = [...] ----------------------------------------------------------------

    def _start_command(self, command: list[str]) -> str:
        port = free_port()
        argv = [
            part.replace("{port}", str(port)).replace("{python}", sys.executable)
            for part in command
        ]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # unbuffered, so the log tail in an error shows what the container last said
        env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    argv,
                    cwd=self.base_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own process group, killed as one
                )
            except OSError as exc:
                raise ContainerError(
                    f"cannot start container command {argv[0]!r}: {exc}",
                    hint="check [container].command (cwd is the config's folder)",
                ) from None
        self._start_watchdog(self.process.pid)
        url = f"http://127.0.0.1:{port}"
        self._wait_healthy(url, describe=f"command {' '.join(argv)}")
        return url

    def _start_watchdog(self, group: int) -> None:
        """Make the container die with this process, however this process dies."""
        read_end, self._watch_fd = os.pipe()  # both close-on-exec: no other child holds them
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG, str(read_end), str(group),
                 str(STOP_GRACE_SECONDS)],
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a signal to our process group must not reach it
            )  # fmt: skip
        finally:
            os.close(read_end)

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watchdog.wait(timeout=STOP_GRACE_SECONDS)
            self.watchdog = None
        if self._watch_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._watch_fd)
            self._watch_fd = None

    def _kill_group(self, process: subprocess.Popen[bytes]) -> None:
        pgid = process.pid  # start_new_session: the child leads its own group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)
        # members may outlive the leader (or ignore SIGTERM): make sure none remain
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)

    # -- health -------------------------------------------------------------------------

    def _wait_healthy(self, url: str, *, describe: str) -> None:
        timeout = self.config.startup_timeout_seconds
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(timeout=min(5.0, timeout)) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise ContainerError(
                        f"container {describe} exited with code {self.process.returncode} "
                        f"before answering /health; last output: {tail(self.log_path)}",
                        hint=f"see {self.log_path}",
                    )
                try:
                    response = client.get(f"{url}/health")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                if time.monotonic() >= deadline:
                    output = tail(self.log_path) if self.process is not None else ""
                    raise ContainerError(
                        f"container {describe} did not answer GET {url}/health within "
                        f"{timeout:g}s ({last})" + (f"; last output: {output}" if output else ""),
                        hint="check the container, or raise container.startup_timeout_seconds",
                    )
                time.sleep(0.05)

    # -- signals ------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        if (
            not self.install_signal_handlers
            or self._previous
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)

    def _restore_handlers(self) -> None:
        if not self._previous or threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous.get(signum)
        self.stop()  # also restores the previous handlers
        if callable(previous):
            previous(signum, frame)  # e.g. KeyboardInterrupt for SIGINT
        elif previous == signal.SIG_IGN:
            return
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
