"""Workers: claim a request, run it in a child process, heartbeat, record the outcome.

A run never executes inside the service process: a child (`gepa run --json`, or
`gepa resume RUN_DIR` when the run directory already has a checkpoint), forked from a
pre-imported fork server (forkserver.py), does the work, so a crash of the run cannot take
the service down, and a killed service takes its children with it, leaving no orphan
writing a run dir that a restarted service is about to resume. A worker that cannot
renew its lease (its database is gone) stops its child before the lease runs out, so a
run taken over by another host is never written by two.

Shutdown: `WorkerPool.begin_shutdown` stops every worker from claiming and asks each
running child to stop at its next safe point (SIGTERM: checkpoint, manifest, exit);
a child still running after the grace period is killed. Either way its request goes
back to the queue, and the next worker resumes it from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.liveness import LockInfo, pid_alive, read_lock
from gepa_cli.artifacts.schema import Manifest, read_document
from gepa_cli.errors import GepaCliError
from gepa_cli.runner import RunResult, summary
from gepa_cli.runner.control import request_stop
from gepa_cli.service.db import DatabaseUnavailableError
from gepa_cli.service.errors import LeaseLostError
from gepa_cli.service.launch import ChildSpec, RunProcess, start_child, warm
from gepa_cli.service.metrics import RunMeter, ServiceMetrics
from gepa_cli.service.progress import FeedProgress
from gepa_cli.service.queue import Request, RunQueue
from gepa_cli.service.submit import ServiceSettings

log = logging.getLogger("gepa_cli.service")

STOP_REASON = {"cancel": "cancelled", "pause": "paused"}
# how a run that stopped cleanly (exit 0) leaves its request
STOPPED_STATUS = {"cancelled": "cancelled", "paused": "paused", "stop_file": "paused"}
# a worker that could not renew its lease for this share of it stops its run: the lease
# is about to expire and another worker will take the run over
SELF_FENCE = 0.8


def child_spec(request: Request, settings: ServiceSettings, resume: bool) -> ChildSpec:
    """The run's child: `gepa run --json`, `gepa resume RUN_DIR` once it has a
    checkpoint, or the service's own entry for a config submitted as text."""
    output_dir = str(Path(request.run_dir).parent)
    entry, args = "gepa_cli.cli.main:main", ["gepa", "resume", request.run_dir]
    if not resume and request.base_dir is not None:
        entry = "gepa_cli.service.child:main"
        args = ["--config", request.config_path, "--base-dir", request.base_dir,
                "--run-id", request.run_id, "--output-dir", output_dir]  # fmt: skip
    elif not resume:
        args = ["gepa", "run", "--config", request.config_path, "--run-id", request.run_id,
                "--output-dir", output_dir, "--json"]  # fmt: skip
    stem = settings.log_dir / request.request_id
    return ChildSpec(
        entry=entry,
        args=tuple(args),
        cwd=str(request.base_dir or Path(request.config_path).parent),
        stdout=f"{stem}.out",
        stderr=f"{stem}.err",
        environ=dict(os.environ),
    )


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Which version of a file this is: manifests are replaced whole (a new inode), so
    a changed stamp means a new write, whatever the clocks of the hosts sharing it."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _read_manifest(run_dir: Path, before: tuple[int, int, int] | None = None) -> Manifest | None:
    """The run's manifest, unless it is still the one stamped ``before`` this attempt."""
    path = run_dir / layout.MANIFEST
    stamp = _stamp(path)
    if stamp is None or (before is not None and stamp == before):
        return None  # none, or left by an earlier attempt: says nothing about this one
    try:
        return read_document(path, Manifest)
    except GepaCliError:
        return None


def take_over_lock(run_dir: Path, host: str) -> LockInfo | None:
    """Remove the run lock a run on another host left: the queue gave us its lease after
    the old one expired (and that host's worker stops its child once it cannot renew),
    so the lock is a dead run's. A lock of this host is left to the run lock's own
    liveness check. Returns the lock removed, if any."""
    lock = read_lock(run_dir)
    if lock is None or lock.host == host:
        return None
    (run_dir / layout.LOCK).unlink(missing_ok=True)
    return lock


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

    def __init__(
        self,
        queue: RunQueue,
        settings: ServiceSettings,
        stopping: threading.Event,
        metrics: ServiceMetrics | None = None,
    ):
        self.queue = queue
        self.settings = settings
        self.stopping = stopping
        self.metrics = metrics or ServiceMetrics()
        self.host = socket.gethostname()
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
        done = _read_manifest(run_dir) if resume else None
        if done is not None and done.state == "finished":
            # the run ended but the service died before recording it
            self._finish(request, owner, "succeeded", manifest=_summary(run_dir, done))
            return
        if resume and (taken := take_over_lock(run_dir, self.host)) is not None:
            log.warning(
                "request %s: taking over run %s from %s (pid %d), whose lease expired",
                request.request_id,
                request.run_id,
                taken.host,
                taken.pid,
            )
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        before = _stamp(run_dir / layout.MANIFEST)
        meter = RunMeter(FeedProgress(run_dir), self.metrics)
        meter.observe()  # what earlier attempts did is not this execution's work
        spec = child_spec(request, settings, resume)
        for log_path in (spec.stdout, spec.stderr):
            Path(log_path).touch()
        proc = start_child(spec)
        try:
            self.queue.mark_running(request.request_id, owner, proc.pid)
            returncode, stop_sent = self._supervise(proc, request, owner, run_dir, meter)
        except BaseException:
            _terminate(proc)
            raise
        self._record(request, owner, run_dir, (returncode, stop_sent, before), Path(spec.stderr))

    def _supervise(
        self,
        proc: RunProcess,
        request: Request,
        owner: str,
        run_dir: Path,
        meter: RunMeter,
    ) -> tuple[int, str | None]:
        """The child's exit code and the control (cancel or pause) sent to it, if any."""
        lease = self.settings.lease_seconds
        tick = min(0.25, lease / 4)
        beat_every = lease / 3
        renewed = last_beat = last_look = time.monotonic()
        stop_sent: str | None = None
        control = request.control
        while True:
            code = proc.wait(timeout=tick)
            if code is not None:
                meter.observe()
                return code, stop_sent
            if self.stopping.is_set():
                # checkpoint and exit; the request goes back to the queue for a resume
                meter.observe()
                return _terminate(proc, grace=self.settings.shutdown_grace_seconds), stop_sent
            try:
                if time.monotonic() - last_beat >= beat_every:
                    last_beat = time.monotonic()
                    control = self.queue.heartbeat(request.request_id, owner, lease)
                    renewed = time.monotonic()
                    self.queue.workers.beat(owner, self.host, "busy", request.request_id)
                else:
                    control = self.queue.get(request.request_id).control
            except DatabaseUnavailableError as lost:
                if time.monotonic() - renewed < SELF_FENCE * lease:
                    log.warning("request %s: %s; retrying", request.request_id, lost.one_line())
                    continue
                _terminate(proc)
                raise LeaseLostError(
                    f"worker {owner} could not renew its lease on request "
                    f"{request.request_id} for {SELF_FENCE * lease:.1f}s and stopped its run",
                    hint="another worker resumes it once the lease expires",
                ) from None
            except LeaseLostError:
                _terminate(proc)
                raise
            if time.monotonic() - last_look >= 1.0:
                last_look = time.monotonic()
                meter.observe()
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
        outcome: tuple[int, str | None, tuple[int, int, int] | None],
        stderr_path: Path,
    ) -> None:
        returncode, stop_sent, before = outcome
        manifest = _read_manifest(run_dir, before)
        facts = _summary(run_dir, manifest)
        if manifest is not None and manifest.state == "finished":
            # finished during this attempt, even if not by our child: a holder whose
            # lease expired while its run went on (a stalled heartbeat) may finish it
            # just before our resume, which then refuses a finished run
            self._finish(request, owner, "succeeded", manifest=facts)
        elif self.stopping.is_set() and stop_sent is None:
            # stopped (or killed) by our shutdown, not by its own failure: a worker
            # resumes it from its last checkpoint
            self._finish(request, owner, "queued", manifest=facts)
            self.metrics.requeues.labels("shutdown").inc()
        elif returncode == 0 and manifest is not None and manifest.state == "stopped":
            # the service's own cancel or pause says why, whatever the run recorded
            reason = STOP_REASON.get(stop_sent or "", str(manifest.stopped_by))
            self._finish(request, owner, STOPPED_STATUS.get(reason, "paused"), manifest=facts)
        else:
            error = _error(manifest, returncode, stderr_path)
            self._finish(request, owner, "failed", error=error, manifest=facts)

    def _finish(self, request: Request, owner: str, status: str, **fields: Any) -> None:
        self.queue.finish(request.request_id, owner, status, **fields)
        self.metrics.runs_finished.labels(status).inc()


def _terminate(proc: RunProcess, grace: float = 5.0) -> int:
    """SIGTERM (the run stops at a safe point), then SIGKILL the whole group; its status."""
    if (code := proc.poll()) is not None:
        return code
    proc.signal_group(signal.SIGTERM)
    if (code := proc.wait(timeout=grace)) is not None:
        return code
    proc.signal_group(signal.SIGKILL)
    return proc.wait_exit()


class WorkerPool:
    """``workers`` threads claiming from the queue, plus on-demand `run_next` claims."""

    def __init__(
        self, queue: RunQueue, settings: ServiceSettings, metrics: ServiceMetrics | None = None
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.metrics = metrics or ServiceMetrics()
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.executor = Executor(queue, settings, self.stopping, self.metrics)
        self.host = self.executor.host
        self.threads: list[threading.Thread] = []
        self._manual = 0
        self._lock = threading.Lock()
        self._reaped = 0.0

    def owners(self) -> list[str]:
        # the pid keeps two services started with one --worker-id from sharing a lease
        prefix = f"{self.settings.worker_id}/{os.getpid()}"
        return [f"{prefix}-{index}" for index in range(self.settings.workers)]

    def start(self) -> None:
        if self.settings.workers:
            warm()
        self.reap()
        self.queue.workers.forget_dead(self.host, pid_alive, self.settings.stale_after)
        for owner in self.owners():
            self.queue.workers.beat(owner, self.host, "idle", None)
            thread = threading.Thread(target=self._loop, args=(owner,), name=owner, daemon=True)
            thread.start()
            self.threads.append(thread)

    def begin_shutdown(self) -> None:
        """Stop claiming; running children are asked to stop at a safe point."""
        self.stopping.set()
        self.wake.set()

    def stop(self) -> None:
        self.begin_shutdown()
        for thread in self.threads:
            # a child gets the grace period, then is killed; its request is then requeued
            thread.join(timeout=self.settings.shutdown_grace_seconds + 5)
        for owner in self.owners():
            with contextlib.suppress(DatabaseUnavailableError):
                self.queue.workers.gone(owner)

    def notify(self) -> None:
        self.wake.set()

    def reap(self) -> list[str]:
        """Requeue expired leases (any process's: a dead service's work comes back)."""
        self._reaped = time.monotonic()
        requeued = self.queue.requeue_expired()
        if requeued:
            self.metrics.lease_expiries.inc(len(requeued))
            self.metrics.requeues.labels("expired").inc(len(requeued))
            log.warning("requeued %d request(s) whose lease expired", len(requeued))
        return requeued

    def run_next(self) -> Request | None:
        """Claim one request now and run it on its own thread; None if nothing is ready."""
        if self.stopping.is_set():
            return None
        with self._lock:
            self._manual += 1
            owner = f"{self.settings.worker_id}/{os.getpid()}-manual-{self._manual}"
        request = self.queue.claim(owner, self.settings.lease_seconds)
        if request is not None:
            self.queue.workers.beat(owner, self.host, "busy", request.request_id)

            def work() -> None:
                try:
                    self.executor.execute(request, owner)
                finally:
                    with contextlib.suppress(DatabaseUnavailableError):
                        self.queue.workers.gone(owner)

            thread = threading.Thread(target=work, name=owner, daemon=True)
            thread.start()
            self.threads.append(thread)
        return request

    def _loop(self, owner: str) -> None:
        beat_every = min(self.settings.lease_seconds, self.settings.stale_after) / 3
        last_beat = time.monotonic()
        while not self.stopping.is_set():
            try:
                # every worker also reaps expired leases, so a dead service's work comes
                # back without anyone calling /worker/recover
                if time.monotonic() - self._reaped >= min(1.0, self.settings.lease_seconds / 4):
                    self.reap()
                request = self.queue.claim(owner, self.settings.lease_seconds)
                if request is not None:
                    self.queue.workers.beat(owner, self.host, "busy", request.request_id)
                    self.executor.execute(request, owner)
                    self.queue.workers.beat(owner, self.host, "idle", None)
                    last_beat = time.monotonic()
                    continue
                if time.monotonic() - last_beat >= beat_every:
                    self.queue.workers.beat(owner, self.host, "idle", None)
                    last_beat = time.monotonic()
            except GepaCliError as error:  # a typed error says enough in one line
                log.error("worker %s: %s; retrying", owner, error.one_line())
            except Exception:
                log.exception("worker %s: unexpected error; retrying", owner)
            self.wake.wait(self.settings.poll_seconds)
            self.wake.clear()
