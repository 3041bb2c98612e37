"""Fixtures of the service tests: a real PostgreSQL server, and a queue per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .postgres import PostgresServer, required, unavailable

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    reason = unavailable()
    if reason is not None:
        if required():
            pytest.fail(f"GEPA_TEST_POSTGRES=require, but {reason}")
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server."""
    return postgres_server.create_database()


@pytest.fixture(params=BACKENDS)
def queue_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The queue's database, once per backend: a SQLite file or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return str(tmp_path / "queue.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
