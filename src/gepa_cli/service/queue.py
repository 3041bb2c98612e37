"""The durable run queue: one SQLite table (WAL), claimed atomically with leases.

Every state change is one short transaction, so several worker threads (or several
service processes on one database) can share the queue. A claim runs under
``BEGIN IMMEDIATE`` so two claimers never pick the same row, and it skips a request
whose container or cache namespace is already used by an active request: two runs
writing one namespace, or hammering one container, would make neither reproducible.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.service.errors import ConflictError, LeaseLostError, NotFoundError

STATUSES = ("queued", "leased", "running", "paused", "succeeded", "failed", "cancelled")
ACTIVE = ("leased", "running")
TERMINAL = ("succeeded", "failed", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id       TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    config_path      TEXT NOT NULL,
    base_dir         TEXT,
    run_dir          TEXT NOT NULL,
    container_key    TEXT NOT NULL,
    namespace_key    TEXT NOT NULL,
    control          TEXT,
    lease_owner      TEXT,
    lease_expires_at REAL,
    heartbeat_at     TEXT,
    child_pid        INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    claimed_at       TEXT,
    started_at       TEXT,
    finished_at      TEXT,
    error            TEXT,
    cancel           TEXT,
    manifest         TEXT
);
CREATE INDEX IF NOT EXISTS requests_claim ON requests (status, priority DESC, created_at);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Request:
    request_id: str
    run_id: str
    status: str
    priority: int
    config_path: str
    base_dir: str | None
    run_dir: str
    container_key: str
    namespace_key: str
    control: str | None
    lease_owner: str | None
    lease_expires_at: float | None
    heartbeat_at: str | None
    child_pid: int | None
    attempts: int
    created_at: str
    updated_at: str
    claimed_at: str | None
    started_at: str | None
    finished_at: str | None
    error: dict[str, Any] | None
    cancel: dict[str, Any] | None
    manifest: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Request:
        data = dict(row)
        for key in ("error", "cancel", "manifest"):
            data[key] = orjson.loads(data[key]) if data[key] else None
        return cls(**data)

    def to_api(self) -> dict[str, Any]:
        """The public view: no lease internals beyond who holds it and until when."""
        view: dict[str, Any] = {
            "request_id": self.request_id,
            "run_id": self.run_id,
            "status": self.status,
            "priority": self.priority,
            "config_path": self.config_path,
            "run_dir": self.run_dir,
            "attempts": self.attempts,
            "control": self.control,
            "lease": None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "claimed_at": self.claimed_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.lease_owner is not None:
            view["lease"] = {
                "owner": self.lease_owner,
                "expires_in_seconds": round((self.lease_expires_at or 0) - time.time(), 3),
                "heartbeat_at": self.heartbeat_at,
            }
        if self.manifest is not None:
            view["manifest"] = self.manifest
        if self.error is not None:
            view["error"] = self.error
        if self.cancel is not None:
            view["cancel"] = self.cancel
        return view


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class RunQueue:
    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # one connection per operation: connections are not shared across threads
        db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- submission and reads ---------------------------------------------------------

    def insert(
        self,
        *,
        run_id: str,
        config_path: Path,
        base_dir: Path | None,
        run_dir: Path,
        container_key: str,
        namespace_key: str,
        priority: int = 0,
        auto_start: bool = True,
    ) -> Request:
        request_id = uuid.uuid4().hex
        stamp = now_iso()
        with self._write() as db:
            taken = db.execute("SELECT 1 FROM requests WHERE run_id = ?", (run_id,)).fetchone()
            if taken:
                raise ConflictError(
                    f"run id {run_id!r} is already used by another request",
                    hint="pick another [run] run_id or leave it unset",
                )
            db.execute(
                "INSERT INTO requests (request_id, run_id, status, priority, config_path, "
                "base_dir, run_dir, container_key, namespace_key, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    run_id,
                    "queued" if auto_start else "paused",
                    priority,
                    str(config_path),
                    str(base_dir) if base_dir else None,
                    str(run_dir),
                    container_key,
                    namespace_key,
                    stamp,
                    stamp,
                ),
            )
        return self.get(request_id)

    def get(self, request_id: str) -> Request:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM requests WHERE request_id = ? OR run_id = ?",
                (request_id, request_id),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no request {request_id!r}", hint="list them with GET /runs")
        return Request.from_row(row)

    def page(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Request], int]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self._connect() as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM requests {where}", args).fetchone()[0])
            rows = db.execute(
                f"SELECT * FROM requests {where} ORDER BY created_at, request_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [Request.from_row(row) for row in rows], total

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall()
        found = {str(row[0]): int(row[1]) for row in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def leases(self) -> list[Request]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM requests WHERE lease_owner IS NOT NULL ORDER BY claimed_at"
            ).fetchall()
        return [Request.from_row(row) for row in rows]

    def delete(self, request_id: str) -> Request:
        with self._write() as db:
            request = self._locked_get(db, request_id)
            if request.status not in TERMINAL:
                raise ConflictError(
                    f"request {request.request_id} is {request.status}",
                    hint="only succeeded, failed or cancelled requests can be deleted; "
                    "cancel it first",
                )
            db.execute("DELETE FROM requests WHERE request_id = ?", (request.request_id,))
        return request

    # -- worker side ------------------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float) -> Request | None:
        """Lease the most urgent queued request whose container and namespace are free."""
        with self._write() as db:
            busy = db.execute(
                "SELECT container_key, namespace_key FROM requests WHERE status IN (?, ?)", ACTIVE
            ).fetchall()
            containers = {row[0] for row in busy}
            namespaces = {row[1] for row in busy}
            for row in db.execute(
                "SELECT request_id, container_key, namespace_key FROM requests "
                "WHERE status = 'queued' ORDER BY priority DESC, created_at, request_id"
            ).fetchall():
                if row[1] in containers or row[2] in namespaces:
                    continue
                stamp = now_iso()
                db.execute(
                    "UPDATE requests SET status = 'leased', lease_owner = ?, "
                    "lease_expires_at = ?, heartbeat_at = ?, claimed_at = ?, updated_at = ?, "
                    "attempts = attempts + 1 WHERE request_id = ?",
                    (owner, time.time() + lease_seconds, stamp, stamp, stamp, row[0]),
                )
                return self._locked_get(db, str(row[0]))
        return None

    def mark_running(self, request_id: str, owner: str, child_pid: int) -> None:
        stamp = now_iso()
        with self._write() as db:
            self._owned(db, request_id, owner)
            db.execute(
                "UPDATE requests SET status = 'running', child_pid = ?, "
                "started_at = COALESCE(started_at, ?), updated_at = ? WHERE request_id = ?",
                (child_pid, stamp, stamp, request_id),
            )

    def heartbeat(self, request_id: str, owner: str, lease_seconds: float) -> str | None:
        """Extend the lease; returns the pending control (cancel or pause), if any."""
        with self._write() as db:
            request = self._owned(db, request_id, owner)
            db.execute(
                "UPDATE requests SET lease_expires_at = ?, heartbeat_at = ? WHERE request_id = ?",
                (time.time() + lease_seconds, now_iso(), request_id),
            )
        return request.control

    def finish(
        self,
        request_id: str,
        owner: str,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        """Leave the lease with the request's next status (terminal, paused or queued)."""
        stamp = now_iso()
        terminal = status in TERMINAL
        with self._write() as db:
            self._owned(db, request_id, owner)
            db.execute(
                "UPDATE requests SET status = ?, lease_owner = NULL, lease_expires_at = NULL, "
                "child_pid = NULL, control = NULL, updated_at = ?, finished_at = ?, "
                "error = COALESCE(?, error), manifest = COALESCE(?, manifest) "
                "WHERE request_id = ?",
                (
                    status,
                    stamp,
                    stamp if terminal else None,
                    _dumps(error),
                    _dumps(manifest),
                    request_id,
                ),
            )

    def requeue_expired(self) -> list[str]:
        """Give every request whose lease ran out back to the queue (or to its control)."""
        requeued: list[str] = []
        stamp = now_iso()
        with self._write() as db:
            rows = db.execute(
                "SELECT request_id, control FROM requests WHERE status IN (?, ?) "
                "AND lease_expires_at < ?",
                (*ACTIVE, time.time()),
            ).fetchall()
            for request_id, control in rows:
                # the run is dead either way; a pending cancel or pause still wins
                status = {"cancel": "cancelled", "pause": "paused"}.get(control, "queued")
                db.execute(
                    "UPDATE requests SET status = ?, lease_owner = NULL, "
                    "lease_expires_at = NULL, child_pid = NULL, control = NULL, "
                    "updated_at = ?, finished_at = CASE WHEN ? = 'cancelled' THEN ? END "
                    "WHERE request_id = ?",
                    (status, stamp, status, stamp, request_id),
                )
                requeued.append(str(request_id))
        return requeued

    # -- controls ---------------------------------------------------------------------

    def control(self, request_id: str, action: str, payload: dict[str, Any]) -> Request:
        """Apply cancel, pause or resume; an active request gets a pending control."""
        stamp = now_iso()
        with self._write() as db:
            request = self._locked_get(db, request_id)
            rid, status = request.request_id, request.status
            if action == "resume":
                if status != "paused":
                    raise ConflictError(
                        f"request {rid} is {status}", hint="only a paused request can be resumed"
                    )
                db.execute(
                    "UPDATE requests SET status = 'queued', updated_at = ? WHERE request_id = ?",
                    (stamp, rid),
                )
            elif status in TERMINAL:
                raise ConflictError(f"request {rid} is already {status}", hint="nothing to stop")
            elif status in ACTIVE:
                if action == "pause" and request.control == "cancel":
                    raise ConflictError(f"request {rid} is being cancelled")
                db.execute(
                    "UPDATE requests SET control = ?, cancel = COALESCE(?, cancel), "
                    "updated_at = ? WHERE request_id = ?",
                    (action, _dumps(payload) if action == "cancel" else None, stamp, rid),
                )
            elif action == "cancel":
                db.execute(
                    "UPDATE requests SET status = 'cancelled', cancel = ?, finished_at = ?, "
                    "updated_at = ? WHERE request_id = ?",
                    (_dumps(payload), stamp, stamp, rid),
                )
            elif status == "queued":
                db.execute(
                    "UPDATE requests SET status = 'paused', updated_at = ? WHERE request_id = ?",
                    (stamp, rid),
                )
            else:
                raise ConflictError(f"request {rid} is already paused")
            return self._locked_get(db, rid)

    # -- helpers ----------------------------------------------------------------------

    def _locked_get(self, db: sqlite3.Connection, request_id: str) -> Request:
        row = db.execute(
            "SELECT * FROM requests WHERE request_id = ? OR run_id = ?", (request_id, request_id)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no request {request_id!r}", hint="list them with GET /runs")
        return Request.from_row(row)

    def _owned(self, db: sqlite3.Connection, request_id: str, owner: str) -> Request:
        request = self._locked_get(db, request_id)
        if request.lease_owner != owner or request.status not in ACTIVE:
            raise LeaseLostError(
                f"worker {owner} no longer holds the lease on request {request_id}",
                hint="it expired and was requeued; the newer attempt owns the run",
            )
        return request
