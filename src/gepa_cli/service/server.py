"""Start the service: settings from flags, uvicorn in the foreground, a bounded shutdown.

SIGTERM (or Ctrl-C) stops the workers from claiming at once and asks every running
child to stop at its next safe point; uvicorn meanwhile stops accepting connections
and ends open streams. Children still running after the grace period are killed. Every
interrupted request goes back to the queue, and the process exits: within about the
grace period plus uvicorn's own few seconds.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import APIRouter

from gepa_cli.errors import ConfigError
from gepa_cli.service.app import create_app
from gepa_cli.service.context import ServiceContext
from gepa_cli.service.db import is_postgres_url
from gepa_cli.service.keys import load_keys
from gepa_cli.service.listen import bind_socket
from gepa_cli.service.submit import ServiceSettings

# how long uvicorn waits for open connections (streams end by themselves on shutdown)
CONNECTIONS_GRACE_SECONDS = 3


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--bind {bind!r} is not HOST:PORT", hint="e.g. 127.0.0.1:8879")
    return host.strip("[]"), int(port)


def _positive(flag: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{flag} {value} must be positive")


def build_settings(
    *,
    db: str,
    output_dir: Path,
    allowed_roots: list[Path],
    worker_id: str,
    workers: int,
    lease_seconds: float,
    data_dir: Path | None,
    api_key_env: str | None = None,
    keys_file: Path | None = None,
    keys_env: str | None = None,
    stale_seconds: float | None = None,
    shutdown_grace_seconds: float = 10.0,
    poll_seconds: float = 0.2,
    environ: Mapping[str, str] | None = None,
) -> ServiceSettings:
    keys = load_keys(
        keys_file=keys_file,
        keys_env=keys_env,
        api_key_env=api_key_env,
        environ=os.environ if environ is None else environ,
    )
    if workers < 0:
        raise ConfigError(f"--workers {workers} is negative", hint="use 0 or more")
    _positive("--lease-seconds", lease_seconds)
    _positive("--stale-seconds", stale_seconds)
    _positive("--shutdown-grace-seconds", shutdown_grace_seconds)
    _positive("--poll-seconds", poll_seconds)
    roots = tuple(root.resolve() for root in (allowed_roots or [Path.cwd()]))
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"--allowed-root {root} is not a directory")
    if is_postgres_url(db):
        if data_dir is None:
            raise ConfigError(
                "--db postgresql://... needs --data-dir",
                hint="give a directory every service host reaches (like --output-dir): "
                "submitted configs and run logs go there",
            )
        database = db
    else:
        path = Path(db).resolve()
        database = str(path)
        data_dir = data_dir or path.parent / f"{path.stem}-data"
    return ServiceSettings(
        db=database,
        output_dir=output_dir.resolve(),
        allowed_roots=roots,
        worker_id=worker_id,
        workers=workers,
        keys=keys,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        stale_seconds=stale_seconds,
        shutdown_grace_seconds=shutdown_grace_seconds,
        data_dir=data_dir.resolve(),
    )


def listen(bind: str) -> socket.socket:
    """Bind ``HOST:PORT`` now, so a taken port is one clear error before anything runs."""
    return bind_socket(*parse_bind(bind))


class _Server(uvicorn.Server):
    """uvicorn, plus: the first SIGTERM/SIGINT stops the workers claiming right away."""

    context: ServiceContext

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.context.pool.begin_shutdown()
        super().handle_exit(sig, frame)


def serve(
    settings: ServiceSettings, sock: socket.socket, routers: Sequence[APIRouter] = ()
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings, routers=routers)
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=CONNECTIONS_GRACE_SECONDS
    )
    server = _Server(config)
    server.context = app.state.service
    server.run(sockets=[sock])
