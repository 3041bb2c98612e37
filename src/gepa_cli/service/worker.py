"""Workers: claim a request, run it in a child process, heartbeat, record the outcome.

A run never executes inside the service process: a child (`gepa run --json`, or
`gepa resume RUN_DIR --json` when the run directory already has a checkpoint) does the
work, so a crash of the run cannot take the service down, and a killed service takes
its children with it (Linux: PR_SET_PDEATHSIG), leaving no orphan writing a run dir
that a restarted service is about to resume.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.schema import Manifest, read_document
from gepa_cli.errors import GepaCliError
from gepa_cli.runner import RunResult, summary
from gepa_cli.runner.control import request_stop
from gepa_cli.service.errors import LeaseLostError
from gepa_cli.service.queue import Request, RunQueue
from gepa_cli.service.submit import ServiceSettings

log = logging.getLogger("gepa_cli.service")

STOP_REASON = {"cancel": "cancelled", "pause": "paused"}
# how a run that stopped cleanly (exit 0) leaves its request
STOPPED_STATUS = {"cancelled": "cancelled", "paused": "paused", "stop_file": "paused"}
SHUTDOWN_GRACE_SECONDS = 10.0


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if sys.platform.startswith("linux"):
            pr_set_pdeathsig = 1
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        # the parent may have died before prctl took effect
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def child_argv(request: Request, settings: ServiceSettings, resume: bool) -> list[str]:
    if resume:
        return [sys.executable, "-m", "gepa_cli.cli.main", "gepa", "resume", request.run_dir]
    if request.base_dir is not None:
        return [
            sys.executable,
            "-m",
            "gepa_cli.service.child",
            "--config",
            request.config_path,
            "--base-dir",
            request.base_dir,
            "--run-id",
            request.run_id,
            "--output-dir",
            str(Path(request.run_dir).parent),
        ]
    return [
        sys.executable,
        "-m",
        "gepa_cli.cli.main",
        "gepa",
        "run",
        "--config",
        request.config_path,
        "--run-id",
        request.run_id,
        "--output-dir",
        str(Path(request.run_dir).parent),
        "--json",
    ]


def _read_manifest(run_dir: Path, since: float) -> Manifest | None:
    """The run's manifest if this attempt wrote it (modified at or after ``since``)."""
    path = run_dir / layout.MANIFEST
    try:
        if path.stat().st_mtime < since:
            return None  # left by an earlier attempt: says nothing about this one
        return read_document(path, Manifest)
    except (OSError, GepaCliError):
        return None


def _summary(run_dir: Path, manifest: Manifest | None) -> dict[str, Any] | None:
    return dict(summary(RunResult(run_dir, manifest.dump()))) if manifest else None


def _error(manifest: Manifest | None, returncode: int, log: Path) -> dict[str, Any]:
    """Why a run failed: the error its manifest records; without one (the process died
    before it could write it), how the process ended and where its log is."""
    if manifest is not None and manifest.error is not None:
        return {
            "code": manifest.error.error_code,
            "message": manifest.error.message,
            "exit_code": returncode,
        }
    reason = f"was killed by signal {-returncode}" if returncode < 0 else f"exited {returncode}"
    return {
        "code": "run_failed",
        "message": f"the run process {reason} without recording an error in its "
        f"manifest; see its log {log}",
        "exit_code": returncode,
    }


class Executor:
    """Runs one leased request to its end (or until the lease is lost or we shut down)."""

    def __init__(self, queue: RunQueue, settings: ServiceSettings, stopping: threading.Event):
        self.queue = queue
        self.settings = settings
        self.stopping = stopping
        self.current: dict[str, str] = {}  # owner -> request id, for /status

    def execute(self, request: Request, owner: str) -> None:
        self.current[owner] = request.request_id
        try:
            self._execute(request, owner)
        except LeaseLostError as lost:
            log.warning("%s", lost.one_line())
        finally:
            self.current.pop(owner, None)

    def _execute(self, request: Request, owner: str) -> None:
        settings, run_dir = self.settings, Path(request.run_dir)
        resume = (run_dir / layout.CHECKPOINT).exists()
        if not resume and run_dir.exists():
            # an attempt that died before its first checkpoint: nothing to keep
            shutil.rmtree(run_dir)
        done = _read_manifest(run_dir, 0.0) if resume else None
        if done is not None and done.state == "finished":
            # the run ended but the service died before recording it
            self.queue.finish(
                request.request_id, owner, "succeeded", manifest=_summary(run_dir, done)
            )
            return
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        stem = settings.log_dir / request.request_id
        with open(f"{stem}.out", "ab") as out, open(f"{stem}.err", "ab") as err:
            proc = subprocess.Popen(
                child_argv(request, settings, resume),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=request.base_dir or Path(request.config_path).parent,
                start_new_session=True,  # a Ctrl-C on the service is the service's to relay
                preexec_fn=_die_with_parent(os.getpid()),
            )
        try:
            self.queue.mark_running(request.request_id, owner, proc.pid)
            returncode, stop_sent = self._supervise(proc, request, owner, run_dir)
        except BaseException:
            _terminate(proc)
            raise
        outcome = (returncode, stop_sent, started)
        self._record(request, owner, run_dir, outcome, Path(f"{stem}.err"))

    def _supervise(
        self, proc: subprocess.Popen[bytes], request: Request, owner: str, run_dir: Path
    ) -> tuple[int, str | None]:
        """The child's exit code and the control (cancel or pause) sent to it, if any."""
        lease = self.settings.lease_seconds
        tick = min(0.25, lease / 4)
        beat_every, last_beat = lease / 3, time.monotonic()
        stop_sent: str | None = None
        control = request.control
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return proc.wait(timeout=tick), stop_sent
            if self.stopping.is_set():
                # checkpoint and exit; the request goes back to the queue for a resume
                _terminate(proc, grace=SHUTDOWN_GRACE_SECONDS)
                return proc.wait(), stop_sent
            if time.monotonic() - last_beat >= beat_every:
                control = self.queue.heartbeat(request.request_id, owner, lease)
                last_beat = time.monotonic()
            else:
                control = self.queue.get(request.request_id).control
            # STOP only once the run owns its directory: an early file would make
            # the fresh run refuse a non-empty directory
            if control and stop_sent is None and (run_dir / layout.LOCK).exists():
                request_stop(run_dir, STOP_REASON[control])
                stop_sent = control

    def _record(
        self,
        request: Request,
        owner: str,
        run_dir: Path,
        outcome: tuple[int, str | None, float],
        stderr_path: Path,
    ) -> None:
        returncode, stop_sent, started = outcome
        manifest = _read_manifest(run_dir, started)
        facts = _summary(run_dir, manifest)
        if self.stopping.is_set() and returncode != 0:
            self.queue.finish(request.request_id, owner, "queued", manifest=facts)
            return
        if returncode == 0 and manifest is not None:
            if manifest.state == "stopped":
                # the service's own cancel or pause says why, whatever the run recorded
                reason = STOP_REASON.get(stop_sent or "", str(manifest.stopped_by))
                status = STOPPED_STATUS.get(reason, "paused")
            else:
                status = "succeeded"
            self.queue.finish(request.request_id, owner, status, manifest=facts)
            return
        error = _error(manifest, returncode, stderr_path)
        self.queue.finish(request.request_id, owner, "failed", error=error, manifest=facts)


def _terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM (the run stops at a safe point), then SIGKILL the whole group."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class WorkerPool:
    """``workers`` threads claiming from the queue, plus on-demand `run_next` claims."""

    def __init__(self, queue: RunQueue, settings: ServiceSettings) -> None:
        self.queue = queue
        self.settings = settings
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.executor = Executor(queue, settings, self.stopping)
        self.threads: list[threading.Thread] = []
        self._manual = 0
        self._lock = threading.Lock()

    def owners(self) -> list[str]:
        # the pid keeps two services started with one --worker-id from sharing a lease
        prefix = f"{self.settings.worker_id}/{os.getpid()}"
        return [f"{prefix}-{index}" for index in range(self.settings.workers)]

    def start(self) -> None:
        self.queue.requeue_expired()
        for owner in self.owners():
            thread = threading.Thread(target=self._loop, args=(owner,), name=owner, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout=SHUTDOWN_GRACE_SECONDS + 5)

    def notify(self) -> None:
        self.wake.set()

    def run_next(self) -> Request | None:
        """Claim one request now and run it on its own thread; None if nothing is ready."""
        with self._lock:
            self._manual += 1
            owner = f"{self.settings.worker_id}/{os.getpid()}-manual-{self._manual}"
        request = self.queue.claim(owner, self.settings.lease_seconds)
        if request is not None:
            thread = threading.Thread(
                target=self.executor.execute, args=(request, owner), name=owner, daemon=True
            )
            thread.start()
            self.threads.append(thread)
        return request

    def _loop(self, owner: str) -> None:
        # every worker also reaps expired leases, so a dead service's work comes back
        # without anyone calling /worker/recover
        while not self.stopping.is_set():
            try:
                self.queue.requeue_expired()
                request = self.queue.claim(owner, self.settings.lease_seconds)
                if request is not None:
                    self.executor.execute(request, owner)
                    continue
            except Exception:
                log.exception("worker %s: unexpected error; retrying", owner)
            self.wake.wait(self.settings.poll_seconds)
            self.wake.clear()
