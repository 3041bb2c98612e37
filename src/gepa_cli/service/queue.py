"""The durable run queue: one ``requests`` table, claimed atomically under leases.

Every state change is one short serialized transaction (`Database.write`), so worker
threads, service processes on one SQLite file, or service processes on many hosts
sharing one PostgreSQL database can all claim from one queue. A claim skips a request
whose container or cache namespace is already used by an active request: two runs
writing one namespace, or hammering one container, would make neither reproducible.
Every lease is recorded in ``lease_history`` (who held it, from when to when, on the
database's clock, and how it ended), so that exclusion can be checked afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.service.db import Database, Row, Tx, open_database
from gepa_cli.service.errors import ConflictError, LeaseLostError, NotFoundError
from gepa_cli.service.migrations import migrate
from gepa_cli.service.presence import WorkerRegistry

STATUSES = ("queued", "leased", "running", "paused", "succeeded", "failed", "cancelled")
ACTIVE = ("leased", "running")
TERMINAL = ("succeeded", "failed", "cancelled")

# every read of a request also reads how long its lease has left, on the database's clock
SELECT = "SELECT *, lease_expires_at - {now} AS lease_remaining FROM requests"


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
    client: str | None = None
    lease_remaining: float | None = None

    @classmethod
    def from_row(cls, row: Row) -> Request:
        data = dict(row)
        for key in ("error", "cancel", "manifest"):
            data[key] = orjson.loads(data[key]) if data[key] else None
        return cls(**data)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_api(self) -> dict[str, Any]:
        """The public view: no lease internals beyond who holds it and until when."""
        view: dict[str, Any] = {
            "request_id": self.request_id,
            "run_id": self.run_id,
            "status": self.status,
            "client": self.client,
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
                "expires_in_seconds": round(self.lease_remaining or 0.0, 3),
                "heartbeat_at": self.heartbeat_at,
            }
        if self.manifest is not None:
            view["manifest"] = self.manifest
        if self.error is not None:
            view["error"] = self.error
        if self.cancel is not None:
            view["cancel"] = self.cancel
        return view


@dataclass(frozen=True)
class Lease:
    """One row of the lease history: one attempt at a request by one worker."""

    request_id: str
    attempt: int
    owner: str
    container_key: str
    namespace_key: str
    claimed_at: float  # seconds since the epoch, database clock
    ended_at: float | None
    outcome: str | None  # the status the request left with, or "expired"

    def to_api(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class RunQueue:
    def __init__(self, database: Database) -> None:
        self.db = database
        migrate(database)
        self.workers = WorkerRegistry(database)

    @classmethod
    def open(cls, db: str | Path, *, max_connections: int = 8) -> RunQueue:
        """A SQLite file path or a ``postgresql://`` URL."""
        return cls(open_database(db, max_connections=max_connections))

    def close(self) -> None:
        self.db.close()

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
        client: str | None = None,
    ) -> Request:
        request_id = uuid.uuid4().hex
        stamp = now_iso()
        with self.db.write() as tx:
            if tx.one("SELECT 1 AS taken FROM requests WHERE run_id = ?", run_id):
                raise ConflictError(
                    f"run id {run_id!r} is already used by another request",
                    hint="pick another [run] run_id or leave it unset",
                )
            tx.run(
                "INSERT INTO requests (request_id, run_id, status, priority, config_path, "
                "base_dir, run_dir, container_key, namespace_key, created_at, updated_at, "
                "client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                client,
            )
        return self.get(request_id)

    def get(self, request_id: str) -> Request:
        with self.db.read() as tx:
            return self._get(tx, request_id)

    def page(
        self,
        *,
        status: str | None = None,
        client: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Request], int]:
        clauses, args = [], []
        for column, value in (("status", status), ("client", client)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.db.read() as tx:
            total = tx.one(f"SELECT COUNT(*) AS n FROM requests {where}", *args)
            rows = tx.all(
                f"{SELECT} {where} ORDER BY created_at, request_id LIMIT ? OFFSET ?",
                *args,
                limit,
                offset,
            )
        return [Request.from_row(row) for row in rows], int((total or {"n": 0})["n"])

    def counts(self) -> dict[str, int]:
        with self.db.read() as tx:
            rows = tx.all("SELECT status, COUNT(*) AS n FROM requests GROUP BY status")
        found = {str(row["status"]): int(row["n"]) for row in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def leases(self) -> list[Request]:
        with self.db.read() as tx:
            rows = tx.all(f"{SELECT} WHERE lease_owner IS NOT NULL ORDER BY claimed_at")
        return [Request.from_row(row) for row in rows]

    def history(self, request_id: str | None = None) -> list[Lease]:
        """The lease history of one request (by request or run id), or of every request."""
        with self.db.read() as tx:
            if request_id is None:
                rows = tx.all("SELECT * FROM lease_history ORDER BY claimed_at, id")
            else:
                rid = self._get(tx, request_id).request_id
                rows = tx.all(
                    "SELECT * FROM lease_history WHERE request_id = ? ORDER BY attempt, id", rid
                )
        return [Lease(**{k: v for k, v in row.items() if k != "id"}) for row in rows]

    def delete(self, request_id: str) -> Request:
        with self.db.write() as tx:
            request = self._get(tx, request_id)
            if request.status not in TERMINAL:
                raise ConflictError(
                    f"request {request.request_id} is {request.status}",
                    hint="only succeeded, failed or cancelled requests can be deleted; "
                    "cancel it first",
                )
            tx.run("DELETE FROM lease_history WHERE request_id = ?", request.request_id)
            tx.run("DELETE FROM requests WHERE request_id = ?", request.request_id)
        return request

    # -- worker side ------------------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float) -> Request | None:
        """Lease the most urgent queued request whose container and namespace are free."""
        with self.db.read() as tx:
            # most polls find nothing: only take the write lock when there is something
            if tx.one("SELECT 1 AS found FROM requests WHERE status = 'queued' LIMIT 1") is None:
                return None
        with self.db.write() as tx:
            busy = tx.all(
                "SELECT container_key, namespace_key FROM requests WHERE status IN (?, ?)",
                *ACTIVE,
            )
            containers = {row["container_key"] for row in busy}
            namespaces = {row["namespace_key"] for row in busy}
            for row in tx.all(
                "SELECT request_id, container_key, namespace_key FROM requests "
                "WHERE status = 'queued' ORDER BY priority DESC, created_at, request_id"
            ):
                if row["container_key"] in containers or row["namespace_key"] in namespaces:
                    continue
                stamp = now_iso()
                tx.run(
                    "UPDATE requests SET status = 'leased', lease_owner = ?, "
                    "lease_expires_at = {now} + ?, heartbeat_at = ?, claimed_at = ?, "
                    "updated_at = ?, attempts = attempts + 1 WHERE request_id = ?",
                    owner,
                    lease_seconds,
                    stamp,
                    stamp,
                    stamp,
                    row["request_id"],
                )
                request = self._get(tx, str(row["request_id"]))
                tx.run(
                    "INSERT INTO lease_history (request_id, attempt, owner, container_key, "
                    "namespace_key, claimed_at) VALUES (?, ?, ?, ?, ?, {now})",
                    request.request_id,
                    request.attempts,
                    owner,
                    request.container_key,
                    request.namespace_key,
                )
                return request
        return None

    def mark_running(self, request_id: str, owner: str, child_pid: int) -> None:
        stamp = now_iso()
        with self.db.write() as tx:
            self._owned(tx, request_id, owner)
            tx.run(
                "UPDATE requests SET status = 'running', child_pid = ?, "
                "started_at = COALESCE(started_at, ?), updated_at = ? WHERE request_id = ?",
                child_pid,
                stamp,
                stamp,
                request_id,
            )

    def heartbeat(self, request_id: str, owner: str, lease_seconds: float) -> str | None:
        """Extend the lease; returns the pending control (cancel or pause), if any."""
        with self.db.write() as tx:
            request = self._owned(tx, request_id, owner)
            tx.run(
                "UPDATE requests SET lease_expires_at = {now} + ?, heartbeat_at = ? "
                "WHERE request_id = ?",
                lease_seconds,
                now_iso(),
                request_id,
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
        with self.db.write() as tx:
            request = self._owned(tx, request_id, owner)
            tx.run(
                "UPDATE requests SET status = ?, lease_owner = NULL, lease_expires_at = NULL, "
                "child_pid = NULL, control = NULL, updated_at = ?, finished_at = ?, "
                "error = COALESCE(?, error), manifest = COALESCE(?, manifest) "
                "WHERE request_id = ?",
                status,
                stamp,
                stamp if terminal else None,
                _dumps(error),
                _dumps(manifest),
                request_id,
            )
            self._end_lease(tx, request, status)

    def requeue_expired(self) -> list[str]:
        """Give every request whose lease ran out back to the queue (or to its control)."""
        requeued: list[str] = []
        stamp = now_iso()
        with self.db.write() as tx:
            rows = tx.all(
                f"{SELECT} WHERE status IN (?, ?) AND lease_expires_at < {{now}}", *ACTIVE
            )
            for row in rows:
                request = Request.from_row(row)
                # the run is dead either way; a pending cancel or pause still wins
                status = {"cancel": "cancelled", "pause": "paused"}.get(
                    request.control or "", "queued"
                )
                tx.run(
                    "UPDATE requests SET status = ?, lease_owner = NULL, "
                    "lease_expires_at = NULL, child_pid = NULL, control = NULL, "
                    "updated_at = ?, finished_at = ? WHERE request_id = ?",
                    status,
                    stamp,
                    stamp if status == "cancelled" else None,
                    request.request_id,
                )
                self._end_lease(tx, request, "expired")
                requeued.append(request.request_id)
        return requeued

    # -- controls ---------------------------------------------------------------------

    def control(self, request_id: str, action: str, payload: dict[str, Any]) -> Request:
        """Apply cancel, pause or resume; an active request gets a pending control."""
        stamp = now_iso()
        with self.db.write() as tx:
            request = self._get(tx, request_id)
            rid, status = request.request_id, request.status
            if action == "resume":
                if status != "paused":
                    raise ConflictError(
                        f"request {rid} is {status}", hint="only a paused request can be resumed"
                    )
                tx.run(
                    "UPDATE requests SET status = 'queued', updated_at = ? WHERE request_id = ?",
                    stamp,
                    rid,
                )
            elif status in TERMINAL:
                raise ConflictError(f"request {rid} is already {status}", hint="nothing to stop")
            elif status in ACTIVE:
                if action == "pause" and request.control == "cancel":
                    raise ConflictError(f"request {rid} is being cancelled")
                tx.run(
                    "UPDATE requests SET control = ?, cancel = COALESCE(?, cancel), "
                    "updated_at = ? WHERE request_id = ?",
                    action,
                    _dumps(payload) if action == "cancel" else None,
                    stamp,
                    rid,
                )
            elif action == "cancel":
                tx.run(
                    "UPDATE requests SET status = 'cancelled', cancel = ?, finished_at = ?, "
                    "updated_at = ? WHERE request_id = ?",
                    _dumps(payload),
                    stamp,
                    stamp,
                    rid,
                )
            elif status == "queued":
                tx.run(
                    "UPDATE requests SET status = 'paused', updated_at = ? WHERE request_id = ?",
                    stamp,
                    rid,
                )
            else:
                raise ConflictError(f"request {rid} is already paused")
            return self._get(tx, rid)

    # -- helpers ----------------------------------------------------------------------

    def _get(self, tx: Tx, request_id: str) -> Request:
        row = tx.one(f"{SELECT} WHERE request_id = ? OR run_id = ?", request_id, request_id)
        if row is None:
            raise NotFoundError(f"no request {request_id!r}", hint="list them with GET /runs")
        return Request.from_row(row)

    def _owned(self, tx: Tx, request_id: str, owner: str) -> Request:
        request = self._get(tx, request_id)
        if request.lease_owner != owner or request.status not in ACTIVE:
            raise LeaseLostError(
                f"worker {owner} no longer holds the lease on request {request_id}",
                hint="it expired and was requeued; the newer attempt owns the run",
            )
        return request

    def _end_lease(self, tx: Tx, request: Request, outcome: str) -> None:
        tx.run(
            "UPDATE lease_history SET ended_at = {now}, outcome = ? "
            "WHERE request_id = ? AND attempt = ? AND ended_at IS NULL",
            outcome,
            request.request_id,
            request.attempts,
        )
