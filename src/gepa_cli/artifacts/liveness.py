"""The run lock (``run.lock``): who runs a run directory, so a crash is recognisable.

Written at start, refreshed by `RunLock.heartbeat`, removed at the end. A lock left
behind whose pid is gone (on this host) is stale: the run crashed and may be resumed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ValidationError

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.atomic import write_json_atomic
from gepa_cli.artifacts.events import utc_now
from gepa_cli.errors import ResumeError

LockStatus = Literal["absent", "alive", "stale", "unknown"]


class LockInfo(BaseModel):
    run_id: str
    pid: int
    host: str
    started_at: str
    heartbeat_at: str


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited but not yet reaped: kill(0) still finds it. A run whose parent died with
    it is reaped by init, which on some machines takes seconds; meanwhile its run
    directory must read as crashed, not as still running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False  # no /proc (not Linux): kill(0) is all there is
    return stat.rsplit(b")", 1)[1].split()[0] == b"Z"


def read_lock(run_dir: Path) -> LockInfo | None:
    path = run_dir / layout.LOCK
    try:
        return LockInfo.model_validate(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError, ValidationError):
        # a lock we cannot read says nothing about liveness; treat as no owner
        return None


def lock_status(run_dir: Path) -> LockStatus:
    """absent: no lock; alive: its process runs here; stale: it died; unknown: other host."""
    info = read_lock(run_dir)
    if info is None:
        return "absent"
    if info.host != socket.gethostname():
        return "unknown"
    return "alive" if pid_alive(info.pid) else "stale"


class RunLock:
    def __init__(self, run_dir: Path, run_id: str) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / layout.LOCK
        self.run_id = run_id
        self.info: LockInfo | None = None

    def acquire(self) -> LockInfo:
        """Take the lock; a live owner is a `ResumeError`, a stale one is replaced."""
        owner = read_lock(self.run_dir)
        if owner is not None and (owner.host != socket.gethostname() or pid_alive(owner.pid)):
            raise ResumeError(
                f"run {owner.run_id} in {self.run_dir} is held by pid {owner.pid} on {owner.host}",
                hint="wait for it to finish or stop it; delete run.lock only if that "
                "process is really gone",
            )
        now = utc_now()
        self.info = LockInfo(
            run_id=self.run_id,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=now,
            heartbeat_at=now,
        )
        write_json_atomic(self.path, self.info.model_dump())
        return self.info

    def heartbeat(self) -> None:
        if self.info is None:
            return
        self.info = self.info.model_copy(update={"heartbeat_at": utc_now()})
        write_json_atomic(self.path, self.info.model_dump(), fsync=False)

    def release(self) -> None:
        if self.info is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.info = None
