"""Start a run's child process from a fork server that has already imported gepa-cli.

A worker runs every request in a child process (see worker.py). Starting that child
as `python -m gepa_cli ...` costs each run the interpreter's start and gepa-cli's
imports (the HTTP stack, pydantic models, FastAPI for in-process containers): about
0.6 s of CPU, often more than a small run's own work. The fork server is a clean,
single-threaded process (never the service itself, whose threads could hold a lock
across a fork) started once with those modules imported; each run is forked from it,
then becomes what `python -m` would have made it: its own session, stdin from
/dev/null, stdout and stderr appended to its log files, the run's working directory
and the service's environment as it is at launch.

A child dies with the service that started it, so a killed service still leaves no
orphan writing a run directory that a restarted service is about to resume.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import importlib
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess

# The fork server imports these once. The entries themselves load their commands
# lazily, so what a run goes on to import is listed too; a module missing here is only
# imported by each child instead.
PRELOAD = (
    "gepa_cli.service.launch",
    "gepa_cli.cli.main",
    "gepa_cli.cli.gepa",
    "gepa_cli.cli.gepa_run",
    "gepa_cli.cli.service",
    "gepa_cli.service.child",
    "gepa_cli.runner",
    "gepa_cli.runtime.container",
    "gepa_cli.runtime.proposers",
    "fastapi",
)

# evaluated when this module is imported: in the fork server (it is preloaded) that is
# the fork server's pid, which every child inherits as the parent it must outlive
_FORK_SERVER_PID = os.getpid()
_PR_SET_PDEATHSIG = 1
_SESSION_WAIT_SECONDS = 10.0

_CONTEXT = multiprocessing.get_context("forkserver")


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


class RunProcess:
    """A started child. Like `subprocess.Popen(start_new_session=True)`: its pid leads
    its own process group by the time `start_child` returns it."""

    def __init__(self, process: BaseProcess) -> None:
        self._process = process
        self.pid = int(process.pid or 0)

    def poll(self) -> int | None:
        """The exit status (negative: killed by that signal), or None while it runs."""
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        return self._process.exitcode

    def wait_exit(self) -> int:
        self._process.join()
        return int(self._process.exitcode or 0)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)


def warm() -> None:
    """Start the fork server now rather than at the first run."""
    _CONTEXT.set_forkserver_preload(list(PRELOAD))
    forkserver.ensure_running()


def start_child(spec: ChildSpec, name: str) -> RunProcess:
    _CONTEXT.set_forkserver_preload(list(PRELOAD))
    # daemon: if the service exits while a child still runs, multiprocessing terminates
    # it (SIGTERM: a run checkpoints and stops) instead of waiting for it
    process = _CONTEXT.Process(target=_child_main, args=(spec,), name=name, daemon=True)
    process.start()
    child = RunProcess(process)
    deadline = time.monotonic() + _SESSION_WAIT_SECONDS
    while child.poll() is None and time.monotonic() < deadline:
        try:
            if os.getpgid(child.pid) == child.pid:
                break
        except ProcessLookupError:
            break
        time.sleep(0.001)
    return child


def _child_main(spec: ChildSpec) -> None:
    """In the forked child: become the run's process, call the entry, exit as a Python
    process exits (atexit handlers included)."""
    os.setsid()  # the worker signals the run and everything it started as one group
    _die_with_service(spec.service_pid)
    # multiprocessing hands every child the write end of the pipe whose EOF tells the
    # fork server that the service is gone (so that a child could fork more): a run
    # holding it would keep the fork server, and so itself, alive after the service
    server = vars(forkserver._forkserver)  # private to multiprocessing, hence untyped
    if server.get("_forkserver_alive_fd") is not None:
        os.close(server["_forkserver_alive_fd"])
        server["_forkserver_alive_fd"] = None
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    _redirect(0, os.devnull, os.O_RDONLY)
    _redirect(1, spec.stdout, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    _redirect(2, spec.stderr, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.chdir(spec.cwd)
    os.environ.clear()
    os.environ.update(spec.environ)
    module, _, function = spec.entry.partition(":")
    sys.argv = [spec.entry, *spec.args]
    try:
        code = getattr(importlib.import_module(module), function)(list(spec.args))
    finally:
        # the fork server's children leave by os._exit, which skips atexit
        atexit._run_exitfuncs()
    sys.exit(code)


def _die_with_service(service_pid: int) -> None:
    """SIGKILL this run's group the moment the service is gone: a thread waits on a
    pidfd of the service. Without pidfds (Linux before 5.3), die with the fork server
    instead (PR_SET_PDEATHSIG), which exits once the service is gone, a little later."""
    try:
        service = os.pidfd_open(service_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != _FORK_SERVER_PID:  # it died before prctl took effect
            os._exit(1)
        return

    def watch() -> None:
        select.select([service], [], [])  # readable once the service has exited
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="gepa-service-watch", daemon=True).start()


def _redirect(fd: int, path: str, flags: int) -> None:
    opened = os.open(path, flags, 0o644)
    os.dup2(opened, fd)
    os.close(opened)
