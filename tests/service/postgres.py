"""A real PostgreSQL server for the tests: initdb in a temp dir, on a free loopback port.

The server binaries are looked for in GEPA_TEST_PG_BIN (default: Debian's PostgreSQL 15
path, then PATH). initdb refuses to run as root, so as root the server runs as an
unprivileged user (GEPA_TEST_PG_USER, default ``postgres``) through ``runuser``.
Without binaries (or such a user) the PostgreSQL tests are skipped with the reason,
unless GEPA_TEST_POSTGRES=require (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from .support import free_port

DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "gepa"


def required() -> bool:
    return os.environ.get("GEPA_TEST_POSTGRES", "").lower() in ("1", "require", "required")


def find_bin() -> Path | None:
    given = os.environ.get("GEPA_TEST_PG_BIN")
    for candidate in [Path(given)] if given else [DEFAULT_BIN]:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def unavailable() -> str | None:
    """Why no server can be started here, or None."""
    if find_bin() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found in "
            f"{os.environ.get('GEPA_TEST_PG_BIN', DEFAULT_BIN)} or on PATH"
        )
    if os.geteuid() == 0:
        user = os.environ.get("GEPA_TEST_PG_USER", "postgres")
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no user {user!r} to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is not installed"
    return None


class PostgresServer:
    """One server for a test session; each test gets its own database."""

    def __init__(self) -> None:
        bin_dir = find_bin()
        assert bin_dir is not None
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="gepa-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.sockets.mkdir()
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(os.environ.get("GEPA_TEST_PG_USER", "postgres"))
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", user.pw_name, "--"]

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self.as_user, *argv], capture_output=True, text=True, cwd=self.root, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stderr}{done.stdout}\n{log}")

    def start(self) -> PostgresServer:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "queue") -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
