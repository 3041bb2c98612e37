"""`gepa-cli gepa service`: the HTTP service with its durable run queue."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from gepa_cli.cli.gepa import gepa_app


def register() -> None:
    gepa_app.command("service")(service)


def service(
    db: Path = typer.Option(Path("service.sqlite"), "--db", help="The queue's SQLite file."),
    bind: str = typer.Option("127.0.0.1:8879", "--bind", help="HOST:PORT to listen on."),
    worker_id: str = typer.Option(
        socket.gethostname(), "--worker-id", help="Lease owner prefix for this service's workers."
    ),
    workers: int = typer.Option(
        1, "--workers", help="Runs executed at once (0: only POST /worker/run-next)."
    ),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Require this env var's value as X-API-Key or Bearer token."
    ),
    allowed_roots: list[Path] = typer.Option(
        [], "--allowed-root", help="A directory configs may come from (repeatable; default: cwd)."
    ),
    output_dir: Path = typer.Option(Path("runs"), "--output-dir", help="Where run dirs go."),
    lease_seconds: float = typer.Option(
        30.0,
        "--lease-seconds",
        envvar="GEPA_CLI_SERVICE_LEASE_SECONDS",
        help="A lease not renewed for this long is requeued.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Submitted configs and run logs (default: <db>-data)."
    ),
    proxy_key_env: str | None = typer.Option(
        None,
        "--proxy-key-env",
        help="Online sessions: the env var holding the key the proxy's callers send.",
    ),
) -> None:
    """Serve the run queue over HTTP; workers run each request in a child process.

    Online sessions (docs/online.md) are served by the same process under /online.
    """
    from gepa_cli.online.routes import OnlineExtension, proxy_key
    from gepa_cli.service.server import build_settings, listen, serve

    settings = build_settings(
        db=db,
        output_dir=output_dir,
        allowed_roots=allowed_roots,
        worker_id=worker_id,
        workers=workers,
        api_key_env=api_key_env,
        lease_seconds=lease_seconds,
        data_dir=data_dir,
    )
    online = OnlineExtension(settings, proxy_key(proxy_key_env, settings.api_key))
    sock = listen(bind)
    typer.echo(
        f"gepa-cli service on http://{bind} (db {settings.db_path}, {workers} worker(s))",
        err=True,
    )
    serve(settings, sock, [online])
