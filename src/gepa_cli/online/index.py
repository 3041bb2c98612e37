"""The hot index of a session's rollouts: SQLite, derived from the ledgers, rebuildable.

The run directory is the truth; this file only makes "is this rollout known, whose is
it, was it rewarded, with what" a lookup instead of a scan, so memory does not grow
with traffic. It records how far into rollouts.jsonl and rewards.jsonl it has indexed;
on open it indexes whatever the ledgers hold beyond that, and a file that is missing,
unreadable or ahead of the ledgers is rebuilt from them.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.ledger import dumps_line

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id    TEXT PRIMARY KEY,
    candidate_id  TEXT NOT NULL,
    status        TEXT NOT NULL,
    row_offset    INTEGER NOT NULL,
    reward_seq    INTEGER,
    reward_key    TEXT,
    reward_offset INTEGER
);
CREATE INDEX IF NOT EXISTS rewarded ON rollouts (candidate_id, reward_seq)
    WHERE reward_seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    id          INTEGER PRIMARY KEY CHECK (id = 0),
    events_size INTEGER NOT NULL,
    next_seq    INTEGER NOT NULL,
    data        BLOB NOT NULL
);
"""
VERSION = 2


def reward_key(score: float, feedback: str | None, objectives: dict[str, float]) -> str:
    """What makes two rewards "the same": score, feedback and objectives, canonically."""
    payload = dumps_line({"score": score, "feedback": feedback, "objectives": objectives})
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """The session's fold after the first ``next_seq`` events (``events_size`` bytes)."""

    events_size: int
    next_seq: int
    data: dict[str, Any]


@dataclass(frozen=True)
class IndexedRollout:
    rollout_id: str
    candidate_id: str
    status: str
    row_offset: int
    reward_key: str | None
    reward_offset: int | None

    @property
    def rewarded(self) -> bool:
        return self.reward_key is not None


class RolloutIndex:
    """Opened and used from the event loop's thread only; committed after each fsync."""

    def __init__(self, path: Path, run_dir: Path) -> None:
        self.path = path
        self.run_dir = run_dir
        self.db: sqlite3.Connection | None = None
        self.rewards = 0

    def open(self) -> Snapshot | None:
        """Connect; return the fold snapshot, if one is stored. Call `catch_up` once the
        ledgers are cut back to what the feed accounts for."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError):
            self._discard()
            self._connect()
            return None

    def catch_up(self) -> None:
        """Index what the ledgers hold beyond what this file has indexed."""
        try:
            self._catch_up()
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError):
            # derived data: a damaged or stale index is rebuilt from the ledgers
            self._discard()
            self._connect()
            self._catch_up()

    def _discard(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _connect(self) -> Snapshot | None:
        # opened in a worker thread at startup, then used only by the event loop's thread
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db = db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta and meta.get("version") != VERSION:
            raise ValueError("index version")
        row = db.execute("SELECT events_size, next_seq, data FROM snapshot").fetchone()
        if row is None:
            return None
        data = orjson.loads(row[2])
        if not isinstance(data, dict):
            raise ValueError("snapshot")
        return Snapshot(int(row[0]), int(row[1]), data)

    def _catch_up(self) -> None:
        assert self.db is not None
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        rollouts_at = int(meta.get(layout.ROLLOUTS, 0))
        rewards_at = int(meta.get(layout.REWARDS, 0))
        self.rewards = int(meta.get("rewards", 0))
        for name, at in ((layout.ROLLOUTS, rollouts_at), (layout.REWARDS, rewards_at)):
            size = (self.run_dir / name).stat().st_size if (self.run_dir / name).exists() else 0
            if at > size:
                raise ValueError(f"index is ahead of {name}")
        self.db.execute("BEGIN")
        self._index_tail(layout.ROLLOUTS, rollouts_at, self._index_rollout_row)
        self._index_tail(layout.REWARDS, rewards_at, self._index_reward_row)
        self.commit()

    def _index_tail(self, name: str, start: int, index: Any) -> None:
        path = self.run_dir / name
        if not path.exists():
            return
        with open(path, "rb") as handle:
            handle.seek(start)
            offset = start
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                index(orjson.loads(line), offset)
                offset += len(line)

    def _index_rollout_row(self, row: dict[str, Any], offset: int) -> None:
        self.add_rollout(
            str(row["example_id"]), str(row["candidate_id"]), str(row["status"]), offset
        )

    def _index_reward_row(self, row: dict[str, Any], offset: int) -> None:
        key = reward_key(
            float(row["score"]), row.get("feedback"), dict(row.get("objectives") or {})
        )
        self.add_reward(str(row["rollout_id"]), key, offset)

    def close(self) -> None:
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                if self.db.in_transaction:
                    self.db.execute("COMMIT")
            self.db.close()
            self.db = None

    # -- writes (inside the open transaction; committed by `commit`) --------------------

    def _tx(self) -> sqlite3.Connection:
        assert self.db is not None, "index is not open"
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        return self.db

    def add_rollout(self, rollout_id: str, candidate_id: str, status: str, offset: int) -> None:
        self._tx().execute(
            "INSERT INTO rollouts (rollout_id, candidate_id, status, row_offset) "
            "VALUES (?, ?, ?, ?)",
            (rollout_id, candidate_id, status, offset),
        )

    def add_reward(self, rollout_id: str, key: str, offset: int) -> None:
        self.rewards += 1
        self._tx().execute(
            "UPDATE rollouts SET reward_seq = ?, reward_key = ?, reward_offset = ? "
            "WHERE rollout_id = ?",
            (self.rewards, key, offset, rollout_id),
        )

    def commit(self, snapshot: Snapshot | None = None) -> None:
        """Record how far the ledgers are indexed (and the fold, when given) and commit;
        called after an fsync, so nothing recorded here is ahead of the files."""
        db = self._tx()
        if snapshot is not None:
            db.execute(
                "INSERT OR REPLACE INTO snapshot (id, events_size, next_seq, data) "
                "VALUES (0, ?, ?, ?)",
                (snapshot.events_size, snapshot.next_seq, orjson.dumps(snapshot.data)),
            )
        sizes = {
            name: (self.run_dir / name).stat().st_size if (self.run_dir / name).exists() else 0
            for name in (layout.ROLLOUTS, layout.REWARDS)
        }
        db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [*sizes.items(), ("rewards", self.rewards), ("version", VERSION)],
        )
        db.execute("COMMIT")

    # -- reads ------------------------------------------------------------------------

    def get(self, rollout_id: str) -> IndexedRollout | None:
        assert self.db is not None
        row = self.db.execute(
            "SELECT rollout_id, candidate_id, status, row_offset, reward_key, reward_offset "
            "FROM rollouts WHERE rollout_id = ?",
            (rollout_id,),
        ).fetchone()
        return IndexedRollout(*row) if row else None

    def latest_rewarded(self, candidate_id: str, limit: int) -> list[IndexedRollout]:
        """The last ``limit`` rewarded rollouts of a candidate, oldest first."""
        assert self.db is not None
        rows = self.db.execute(
            "SELECT rollout_id, candidate_id, status, row_offset, reward_key, reward_offset "
            "FROM rollouts WHERE candidate_id = ? AND reward_seq IS NOT NULL "
            "ORDER BY reward_seq DESC LIMIT ?",
            (candidate_id, limit),
        ).fetchall()
        return [IndexedRollout(*row) for row in reversed(rows)]
