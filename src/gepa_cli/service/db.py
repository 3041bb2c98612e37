"""The queue's database: SQLite (embedded, one host) or PostgreSQL (shared by many hosts).

The queue's SQL is written once, with ``?`` placeholders and ``{now}`` for the
database's clock; a `Database` runs it on its backend. Every state change of the queue
is one short *serialized* transaction (`Database.write`): SQLite takes its write lock
up front (``BEGIN IMMEDIATE``); PostgreSQL takes one transaction-level advisory lock.
So a claim's check ("is this namespace free?") and its update are atomic on both, and
the two backends give the same queue semantics. Leases are timed on the database's
clock, so hosts whose clocks disagree still agree on when a lease expires.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from gepa_cli.errors import ConfigError
from gepa_cli.service.errors import ServiceError

Row = dict[str, Any]

# pg_advisory_xact_lock keys ("gepa" and "gepb" in ASCII): queue writes, migrations
QUEUE_LOCK = 0x67657061
MIGRATION_LOCK = 0x67657062


class DatabaseUnavailableError(ServiceError):
    """The queue's database cannot be reached or refused a statement."""

    error_code = "database_unavailable"
    http_status = 503


class Tx(Protocol):
    """One open transaction (or one connection for reads)."""

    def all(self, sql: str, *params: Any) -> list[Row]: ...
    def one(self, sql: str, *params: Any) -> Row | None: ...
    def run(self, sql: str, *params: Any) -> int: ...
    def script(self, sql: str) -> None: ...


class Database(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    now: str  # SQL: seconds since the epoch on the database's clock
    label: str  # where it is, without credentials

    def read(self) -> contextlib.AbstractContextManager[Tx]: ...
    def write(self, *, serialized: bool = True) -> contextlib.AbstractContextManager[Tx]: ...
    def migrate_lock(self) -> contextlib.AbstractContextManager[Tx]: ...
    def close(self) -> None: ...


def _split(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection, now: str) -> None:
        self.db, self.now = db, now

    def all(self, sql: str, *params: Any) -> list[Row]:
        return [dict(row) for row in self.db.execute(sql.format(now=self.now), params)]

    def one(self, sql: str, *params: Any) -> Row | None:
        row = self.db.execute(sql.format(now=self.now), params).fetchone()
        return dict(row) if row is not None else None

    def run(self, sql: str, *params: Any) -> int:
        return int(self.db.execute(sql.format(now=self.now), params).rowcount)

    def script(self, sql: str) -> None:
        for statement in _split(sql):
            self.db.execute(statement)


class SqliteDatabase:
    """One SQLite file in WAL mode; one connection per operation (threads never share one)."""

    dialect = "sqlite"
    # julianday('now') has millisecond resolution; 2440587.5 is the Unix epoch's day
    now = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._connect() as db:
            yield _SqliteTx(db, self.now)

    @contextlib.contextmanager
    def write(self, *, serialized: bool = True) -> Iterator[Tx]:
        # every SQLite write is serialized: the database has one writer at a time
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(db, self.now)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def migrate_lock(self) -> contextlib.AbstractContextManager[Tx]:
        return self.write()

    def close(self) -> None:
        pass


_PLACEHOLDER = re.compile(r"\?")


class _PostgresTx:
    def __init__(self, cursor: Any, now: str) -> None:
        self.cursor, self.now = cursor, now

    def _sql(self, sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql.format(now=self.now))

    def all(self, sql: str, *params: Any) -> list[Row]:
        self.cursor.execute(self._sql(sql), params)
        return list(self.cursor.fetchall())

    def one(self, sql: str, *params: Any) -> Row | None:
        self.cursor.execute(self._sql(sql), params)
        row = self.cursor.fetchone()
        return dict(row) if row is not None else None

    def run(self, sql: str, *params: Any) -> int:
        self.cursor.execute(self._sql(sql), params)
        return int(self.cursor.rowcount)

    def script(self, sql: str) -> None:
        for statement in _split(sql):
            self.cursor.execute(statement)


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresDatabase:
    """A PostgreSQL database through psycopg 3 and a small connection pool."""

    dialect = "postgresql"
    now = "extract(epoch from clock_timestamp())::double precision"

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise ConfigError(
                "--db postgresql://... needs the PostgreSQL driver, which is not installed",
                hint="pip install 'gepa-cli[postgres]' (psycopg 3 and its pool)",
            ) from None
        self.label = redact(url)
        self._errors: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, max_connections),
            kwargs={"row_factory": dict_row, "autocommit": False},
            open=False,
            name="gepa-cli-queue",
        )
        try:
            self.pool.open(wait=True, timeout=15.0)
        except Exception as exc:
            self.pool.close()
            raise DatabaseUnavailableError(
                f"cannot connect to the queue database {self.label}: {exc}",
                hint="check the URL, that the server runs and that it accepts this host",
            ) from None

    @contextlib.contextmanager
    def _transaction(self, lock: int | None) -> Iterator[Tx]:
        try:
            with self.pool.connection(timeout=30.0) as conn, conn.cursor() as cursor:
                if lock is not None:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                yield _PostgresTx(cursor, self.now)
        except self._errors as exc:
            raise DatabaseUnavailableError(
                f"the queue database {self.label} failed: {str(exc).strip()}",
                hint="check that the PostgreSQL server is up and reachable",
            ) from None

    def read(self) -> contextlib.AbstractContextManager[Tx]:
        return self._transaction(None)

    def write(self, *, serialized: bool = True) -> contextlib.AbstractContextManager[Tx]:
        return self._transaction(QUEUE_LOCK if serialized else None)

    def migrate_lock(self) -> contextlib.AbstractContextManager[Tx]:
        return self._transaction(MIGRATION_LOCK)

    def close(self) -> None:
        self.pool.close()


def is_postgres_url(db: str | Path) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def open_database(db: str | Path, *, max_connections: int = 8) -> Database:
    """A SQLite file path, or a ``postgresql://`` URL."""
    if is_postgres_url(db):
        return PostgresDatabase(str(db), max_connections=max_connections)
    if "://" in str(db):
        raise ConfigError(
            f"--db {redact(str(db))}: unknown database URL scheme",
            hint="give a SQLite file path or a postgresql://user@host:port/dbname URL",
        )
    return SqliteDatabase(Path(db))


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)
