"""The queue's schema, as numbered migrations applied in order, once, per database.

``schema_migrations`` records each applied version. A service applies what is missing
when it opens the database, under a lock (several services may start at once), in one
transaction with their records: a database is at one version or the next, never
between. A migration is never edited once released: a schema change is a new
migration at the end of `MIGRATIONS`, with the SQL for each backend. Version 1 is the
schema of the first SQLite-only queue (it creates nothing over a database that has it
already), so such a database upgrades in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from gepa_cli.service.db import Database, Tx


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgresql: str


_REQUESTS = """
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
    lease_expires_at {real},
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
CREATE INDEX IF NOT EXISTS requests_claim ON requests (status, priority DESC, created_at)
"""

_CLIENTS_HISTORY_WORKERS = """
ALTER TABLE requests ADD COLUMN client TEXT;
CREATE INDEX requests_client ON requests (client, created_at);
CREATE TABLE lease_history (
    id            {serial} PRIMARY KEY,
    request_id    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    owner         TEXT NOT NULL,
    container_key TEXT NOT NULL,
    namespace_key TEXT NOT NULL,
    claimed_at    {real} NOT NULL,
    ended_at      {real},
    outcome       TEXT
);
CREATE INDEX lease_history_request ON lease_history (request_id, attempt);
CREATE TABLE workers (
    worker_id  TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    state      TEXT NOT NULL,
    request_id TEXT,
    started_at {real} NOT NULL,
    last_seen  {real} NOT NULL
)
"""

# the online sessions a service holds (gepa_cli.online): where each one's run directory
# is, so a service opens them again when it starts
_ONLINE_SESSIONS = """
CREATE TABLE online_sessions (
    session_id  TEXT PRIMARY KEY,
    run_dir     TEXT NOT NULL,
    config_path TEXT,
    client      TEXT,
    created_at  TEXT NOT NULL
)
"""

SQLITE = {"real": "REAL", "serial": "INTEGER"}  # an INTEGER PRIMARY KEY is the rowid
POSTGRESQL = {"real": "DOUBLE PRECISION", "serial": "BIGSERIAL"}


def _both(template: str) -> tuple[str, str]:
    return template.format(**SQLITE), template.format(**POSTGRESQL)


MIGRATIONS = (
    Migration(1, "requests", *_both(_REQUESTS)),
    Migration(2, "clients, lease history, workers", *_both(_CLIENTS_HISTORY_WORKERS)),
    Migration(3, "online sessions", *_both(_ONLINE_SESSIONS)),
)

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at {real} NOT NULL
)
"""


def applied_versions(tx: Tx) -> list[int]:
    return [int(row["version"]) for row in tx.all("SELECT version FROM schema_migrations")]


def migrate(database: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply every migration the database lacks; returns the versions applied now."""
    done: list[int] = []
    with database.migrate_lock() as tx:
        tx.script(_LEDGER.format(**(SQLITE if database.dialect == "sqlite" else POSTGRESQL)))
        have = set(applied_versions(tx))
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in have:
                continue
            sql = migration.sqlite if database.dialect == "sqlite" else migration.postgresql
            tx.script(sql)
            tx.run(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, {now})",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
    return done
