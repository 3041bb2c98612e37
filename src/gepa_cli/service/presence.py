"""Who is working the queue: one row per worker, beaten while it lives.

Every worker (a claiming thread of some service process, on any host) writes its row
when it starts, on every beat (idle: while it polls; busy: with each lease heartbeat)
and deletes it when it stops cleanly. A row not beaten for longer than the stale
threshold is a *stale* worker: its process was killed, hangs, or lost the database.
`/queue` lists them and `/health` reports them. A stale row is forgotten after
`FORGET_AFTER_SECONDS`, or as soon as a service on the same host sees that its
process is gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gepa_cli.service.db import Database

FORGET_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class Worker:
    worker_id: str
    host: str
    pid: int
    state: str  # idle | busy | stopping
    request_id: str | None
    started_at: float
    last_seen: float
    seen_seconds_ago: float

    def stale(self, threshold: float) -> bool:
        return self.seen_seconds_ago > threshold

    def to_api(self, threshold: float) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "host": self.host,
            "pid": self.pid,
            "state": self.state,
            "request_id": self.request_id,
            "seen_seconds_ago": round(self.seen_seconds_ago, 3),
            "stale": self.stale(threshold),
        }


class WorkerRegistry:
    def __init__(self, database: Database) -> None:
        self.db = database

    def beat(self, worker_id: str, host: str, state: str, request_id: str | None) -> None:
        # one row, no cross-row rule: no need to wait for the queue's write lock
        with self.db.write(serialized=False) as tx:
            tx.run(
                "INSERT INTO workers (worker_id, host, pid, state, request_id, started_at, "
                "last_seen) VALUES (?, ?, ?, ?, ?, {now}, {now}) ON CONFLICT (worker_id) "
                "DO UPDATE SET state = excluded.state, request_id = excluded.request_id, "
                "last_seen = excluded.last_seen",
                worker_id,
                host,
                os.getpid(),
                state,
                request_id,
            )

    def gone(self, worker_id: str) -> None:
        with self.db.write(serialized=False) as tx:
            tx.run("DELETE FROM workers WHERE worker_id = ?", worker_id)

    def list(self) -> list[Worker]:
        with self.db.read() as tx:
            rows = tx.all(
                "SELECT *, {now} - last_seen AS seen_seconds_ago FROM workers "
                "ORDER BY host, worker_id"
            )
        return [Worker(**row) for row in rows]

    def forget_dead(self, host: str, alive: Callable[[int], bool], stale_after: float) -> int:
        """Drop stale rows of this host whose process is gone, and rows stale for long."""
        dead = [
            w.worker_id
            for w in self.list()
            if w.stale(stale_after)
            and ((w.host == host and not alive(w.pid)) or w.seen_seconds_ago > FORGET_AFTER_SECONDS)
        ]
        for worker_id in dead:
            self.gone(worker_id)
        return len(dead)
