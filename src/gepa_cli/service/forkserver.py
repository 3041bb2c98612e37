"""The fork server: a clean, single-threaded process that imports gepa-cli once and
forks each run's child from there (launch.py is its client, in the service).

    python -m gepa_cli.service.forkserver

Once it has imported gepa-cli it says ``{"ready": true}`` on stdout; then it reads one
JSON request per line on stdin (``{"id", "spec"}``) and answers with ``{"id", "pid"}``
once the child is forked and ``{"pid", "status"}`` once it has
exited (the status as `subprocess` gives it: negative for a signal). It exits when
stdin closes, that is when the service is gone.

A child becomes what `python -m` would have made it: its own session, stdin from
/dev/null, stdout and stderr appended to its log files, the run's working directory and
the environment it was given. It dies with the service, and with this server.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import os
import select
import selectors
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import orjson

# imported once here, so that no child imports them again. The entries load their
# commands lazily, so what a run goes on to import is listed too; a module missing here
# is merely imported by each child instead.
PRELOAD = (
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
_PR_SET_PDEATHSIG = 1


def serve() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    server_pid = os.getpid()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the waking
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the service's to relay
    answers = sys.stdout.buffer
    answers.write(b'{"ready": true}\n')  # the imports are done: runs may be asked for
    answers.flush()
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""  # unbuffered reads: a buffered reader could hide a line from select
    with contextlib.suppress(BrokenPipeError):  # the service is gone
        while True:
            ready = {key.fileobj for key, _ in selector.select()}
            if wake_r in ready:
                os.read(wake_r, 4096)
                _report_exits(answers)
            if 0 not in ready:
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return  # the service is gone
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                request = orjson.loads(line)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    signal.set_wakeup_fd(-1)
                    for fd in (wake_r, wake_w):
                        os.close(fd)
                    _child_main(request["spec"], server_pid)
                answers.write(orjson.dumps({"id": request["id"], "pid": pid}) + b"\n")
                answers.flush()


def _report_exits(answers: Any) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        answers.write(orjson.dumps({"pid": pid, "status": code}) + b"\n")
        answers.flush()


def _child_main(spec: dict[str, Any], server_pid: int) -> None:
    """In the forked child: become the run's process, call the entry, exit as a Python
    process exits (atexit handlers included). Never returns."""
    code = 1
    try:
        os.setsid()  # the worker signals the run and everything it started as one group
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _die_with_service(int(spec["service_pid"]), server_pid)
        _redirect(0, os.devnull, os.O_RDONLY)
        _redirect(1, spec["stdout"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        _redirect(2, spec["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.chdir(spec["cwd"])
        sys.path[0] = spec["cwd"]  # as `python -m` started there would have it
        os.environ.clear()
        os.environ.update(spec["environ"])
        module, _, function = spec["entry"].partition(":")
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the server's had read ahead
        sys.argv = [spec["entry"], *spec["args"]]

        def call() -> object:
            return getattr(importlib.import_module(module), function)(list(spec["args"]))

        code = _exit_code(call)
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()  # to the run's log, or the service's if before that
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _exit_code(call: Callable[[], object]) -> int:
    """What `python -m` would exit with: the int returned or passed to SystemExit; 1
    with the traceback on stderr for an uncaught exception."""
    try:
        result = call()
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return int(exit_.code or 0)
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return result if isinstance(result, int) else 0


def _die_with_service(service_pid: int, server_pid: int) -> None:
    """Die with this server (PR_SET_PDEATHSIG), which exits once the service is gone,
    and, where pidfds exist (Linux 5.3+), the moment the service is gone: a thread
    waits on a pidfd of the service, then SIGKILLs this run's group."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != server_pid:  # it died before prctl took effect
        os._exit(1)
    try:
        service = os.pidfd_open(service_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        return

    def watch() -> None:
        select.select([service], [], [])  # readable once the service has exited
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="gepa-service-watch", daemon=True).start()


def _redirect(fd: int, path: str, flags: int) -> None:
    opened = os.open(path, flags, 0o644)
    os.dup2(opened, fd)
    os.close(opened)


if __name__ == "__main__":
    serve()
