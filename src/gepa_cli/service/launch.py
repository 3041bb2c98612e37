"""Start a run's child process from the fork server (forkserver.py).

A worker runs every request in a child process (see worker.py). Starting that child
as `python -m gepa_cli ...` costs each run the interpreter's start and gepa-cli's
imports (the HTTP stack, pydantic models, FastAPI for in-process containers): about a
second of CPU, often more than a small run's own work. The fork server, started once
per service process with those modules imported, forks each run instead. It is a
process of its own, never the service: the service's threads could hold a lock across
a fork.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import orjson

from gepa_cli.service.errors import ServiceError

_START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """What to run: ``entry`` is ``module:function``, called with ``args``; an int it
    returns, or the code of the SystemExit it raises, is the exit status."""

    entry: str
    args: tuple[str, ...]
    cwd: str
    stdout: str
    stderr: str
    environ: dict[str, str]
    service_pid: int = dataclasses.field(default_factory=os.getpid)


class LaunchError(ServiceError):
    """The fork server could not start a child (it failed to start, or died)."""

    error_code = "fork_server_error"


class RunProcess:
    """A started child. Like `subprocess.Popen(start_new_session=True)`: its pid leads
    its own process group."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._status: int | None = None
        self._exited = threading.Event()

    def poll(self) -> int | None:
        """The exit status (negative: killed by that signal), or None while it runs."""
        return self._status

    def wait(self, timeout: float | None = None) -> int | None:
        self._exited.wait(timeout)
        return self._status

    def wait_exit(self) -> int:
        self._exited.wait()
        return int(self._status or 0)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def _exit(self, status: int) -> None:
        self._status = status
        self._exited.set()


class _Started:
    def __init__(self) -> None:
        self.child: RunProcess | None = None
        self.done = threading.Event()


class _Server:
    """One fork server process and what it was asked for: a replacement (after it
    died) starts with none of its predecessor's children."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.starting: dict[int, _Started] = {}
        self.children: dict[int, RunProcess] = {}


class ForkServer:
    """The service's handle on its fork server, started on first use and again if it
    dies (its children die with it: they are reported killed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._ids = itertools.count()

    def warm(self) -> None:
        """Start it and wait until it has imported gepa-cli."""
        with self._lock:
            self._ensure()

    def start_child(self, spec: ChildSpec) -> RunProcess:
        started = _Started()
        with self._lock:
            server = self._ensure()
            request_id = next(self._ids)
            server.starting[request_id] = started
            request = {"id": request_id, "spec": dataclasses.asdict(spec)}
            assert server.popen.stdin is not None
            try:
                server.popen.stdin.write(orjson.dumps(request) + b"\n")
                server.popen.stdin.flush()
            except OSError:
                pass  # it died: its reader reports that below
        if not started.done.wait(_START_TIMEOUT_SECONDS) or started.child is None:
            with self._lock:
                server.starting.pop(request_id, None)
            raise LaunchError(
                "the fork server did not start the run",
                hint="its error is in the service's log; the request is retried",
            )
        child = started.child
        # as with Popen(start_new_session=True), its group exists once we hand it out
        while child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(child.pid) != child.pid:
                    time.sleep(0.001)
                    continue
            break
        return child

    def _ensure(self) -> _Server:
        if self._server is not None and self._server.popen.poll() is None:
            return self._server
        popen = subprocess.Popen(
            [sys.executable, "-m", "gepa_cli.service.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert popen.stdout is not None
        # a worker asks for its run while holding a lease: the imports happen before
        # (at the service's start, see `warm`), not while the lease runs down
        if not popen.stdout.readline():
            popen.wait()
            raise LaunchError(
                f"the fork server exited {popen.returncode} before it was ready",
                hint="its error is in the service's log; check that gepa-cli imports "
                f"with {sys.executable}",
            )
        server = self._server = _Server(popen)
        threading.Thread(
            target=self._read, args=(server,), name="gepa-forkserver", daemon=True
        ).start()
        return server

    def _read(self, server: _Server) -> None:
        assert server.popen.stdout is not None
        for line in server.popen.stdout:
            answer = orjson.loads(line)
            with self._lock:
                pid = int(answer["pid"])
                if "id" in answer:
                    server.children[pid] = RunProcess(pid)
                    if (started := server.starting.pop(answer["id"], None)) is not None:
                        started.child = server.children[pid]
                        started.done.set()
                elif (exited := server.children.pop(pid, None)) is not None:
                    exited._exit(int(answer["status"]))
        server.popen.wait()
        with self._lock:
            # gone: its children died with it, and what was asked of it never came
            for child in server.children.values():
                child._exit(-signal.SIGKILL)
            for started in server.starting.values():
                started.done.set()


_SERVER = ForkServer()


def warm() -> None:
    """Start the fork server now (and wait for it) rather than at the first run."""
    _SERVER.warm()


def start_child(spec: ChildSpec) -> RunProcess:
    return _SERVER.start_child(spec)
