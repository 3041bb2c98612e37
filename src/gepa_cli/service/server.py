"""Start the service: settings from flags, uvicorn in the foreground."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from gepa_cli.errors import ConfigError
from gepa_cli.service.app import ServiceExtension, create_app
from gepa_cli.service.listen import bind_socket
from gepa_cli.service.submit import ServiceSettings


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--bind {bind!r} is not HOST:PORT", hint="e.g. 127.0.0.1:8879")
    return host.strip("[]"), int(port)


def build_settings(
    *,
    db: Path,
    output_dir: Path,
    allowed_roots: list[Path],
    worker_id: str,
    workers: int,
    api_key_env: str | None,
    lease_seconds: float,
    data_dir: Path | None,
) -> ServiceSettings:
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(
                f"--api-key-env names {api_key_env}, but it is unset or empty",
                hint=f"export {api_key_env}=<key> before starting the service",
            )
    if workers < 0:
        raise ConfigError(f"--workers {workers} is negative", hint="use 0 or more")
    if lease_seconds <= 0:
        raise ConfigError(f"--lease-seconds {lease_seconds} must be positive")
    roots = tuple(root.resolve() for root in (allowed_roots or [Path.cwd()]))
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"--allowed-root {root} is not a directory")
    db = db.resolve()
    return ServiceSettings(
        db_path=db,
        output_dir=output_dir.resolve(),
        allowed_roots=roots,
        worker_id=worker_id,
        workers=workers,
        api_key=api_key,
        lease_seconds=lease_seconds,
        data_dir=(data_dir or db.parent / f"{db.stem}-data").resolve(),
    )


def listen(bind: str) -> socket.socket:
    """Bind ``HOST:PORT`` now, so a taken port is one clear error before anything runs."""
    return bind_socket(*parse_bind(bind))


def serve(
    settings: ServiceSettings,
    sock: socket.socket,
    extensions: Sequence[ServiceExtension] = (),
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings, extensions=extensions)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
