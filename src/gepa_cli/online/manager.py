"""The sessions a service holds: created from configs, registered in the service's
database (the queue's: SQLite or PostgreSQL, table ``online_sessions``), opened again
from their run directories when the service starts.

A session is held by one service process at a time (its run directory's lock). With
several service processes on one PostgreSQL database, each opens the sessions no other
live process holds; one held elsewhere is listed as unavailable, with its holder.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gepa_cli.artifacts.events import utc_now
from gepa_cli.errors import GepaCliError
from gepa_cli.online.config import OnlineConfig, load_online_config, online_config_from_toml
from gepa_cli.online.errors import (
    LifecycleConflictError,
    SessionUnavailableError,
    UnknownSessionError,
)
from gepa_cli.online.session import Session
from gepa_cli.service.db import Database
from gepa_cli.service.submit import ServiceSettings, config_source, confine_files

log = logging.getLogger("gepa_cli.online")


def new_session_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"ses-{stamp}-{secrets.token_hex(4)}"


class SessionManager:
    def __init__(self, settings: ServiceSettings, database: Database) -> None:
        self.settings = settings
        self.database = database  # migrated by the queue that opened it
        self.sessions: dict[str, Session] = {}
        self.unavailable: dict[str, str] = {}  # session id -> why it could not be opened

    def index_path(self, session_id: str) -> Path:
        return self.settings.data_dir / "online" / f"{session_id}.index.sqlite"

    # -- lifetime ---------------------------------------------------------------------

    async def start(self) -> None:
        with self.database.read() as tx:
            rows = tx.all("SELECT session_id, run_dir FROM online_sessions ORDER BY created_at")
        for row in rows:
            session_id, run_dir = str(row["session_id"]), str(row["run_dir"])
            try:
                session = await asyncio.to_thread(
                    Session.open, Path(run_dir), self.index_path(session_id)
                )
            except GepaCliError as exc:
                log.error("online session %s cannot be opened: %s", session_id, exc.one_line())
                self.unavailable[session_id] = exc.one_line()
                continue
            self.sessions[session_id] = session
            session.start()

    async def stop(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()

    # -- create and find --------------------------------------------------------------

    def load_config(self, body: dict[str, Any]) -> tuple[OnlineConfig, Path, str | None]:
        roots = self.settings.allowed_roots
        path, base_dir = config_source(body, roots)
        if path is not None:
            config = load_online_config(path)
        else:
            config = online_config_from_toml(str(body["config_toml"]), base_dir=base_dir)
        confine_files(config, roots)
        return config, base_dir, None if path is None else str(path)

    def create(self, body: dict[str, Any], client: str | None = None) -> Session:
        config, base_dir, config_path = self.load_config(body)
        session_id = config.run.run_id or new_session_id()
        if session_id in self.sessions or session_id in self.unavailable:
            raise LifecycleConflictError(
                f"session {session_id!r} already exists", hint="pick another [run] run_id"
            )
        root = (self.settings.output_dir / session_id).resolve()
        with self.database.read() as tx:
            taken = tx.one("SELECT run_dir FROM online_sessions WHERE session_id = ?", session_id)
        if taken is not None:
            raise LifecycleConflictError(
                f"session {session_id!r} already exists (in {taken['run_dir']})",
                hint="pick another [run] run_id",
            )
        session = Session.create(
            config,
            root,
            self.index_path(session_id),
            config_path=config_path,
            base_dir=base_dir,
            client=client,
        )
        with self.database.write(serialized=False) as tx:
            tx.run(
                "INSERT INTO online_sessions (session_id, run_dir, config_path, client, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                session_id,
                str(root),
                config_path,
                client,
                utc_now(),
            )
        self.sessions[session_id] = session
        session.start()
        return session

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            if session_id in self.unavailable:
                raise SessionUnavailableError(
                    f"session {session_id} is not served by this process: "
                    f"{self.unavailable[session_id]}",
                    hint="send its calls to the service process that holds it, or restart "
                    "this one once that process is gone",
                )
            raise UnknownSessionError(
                f"no online session {session_id!r}", hint="list them with GET /online/sessions"
            )
        return session

    def listing(self) -> list[dict[str, Any]]:
        out = [
            {
                "session_id": sid,
                "state": s.fold.state,
                "incumbent_id": s.fold.incumbent_id,
                "served": s.fold.served,
                "rewards": s.fold.rewards,
                "run_dir": str(s.root),
            }
            for sid, s in self.sessions.items()
        ]
        out += [
            {"session_id": sid, "state": "unavailable", "error": why}
            for sid, why in self.unavailable.items()
        ]
        return out
