"""`gepa-cli gepa service`: the HTTP service with its durable run queue."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from gepa_cli.cli.gepa import gepa_app


@gepa_app.command("service")
def service(
    db: str = typer.Option(
        "service.sqlite",
        "--db",
        envvar="GEPA_CLI_SERVICE_DB",
        help="The queue: a SQLite file (one host), or a postgresql://user@host:port/dbname "
        "URL shared by service processes on many hosts.",
    ),
    bind: str = typer.Option("127.0.0.1:8879", "--bind", help="HOST:PORT to listen on."),
    worker_id: str = typer.Option(
        socket.gethostname(), "--worker-id", help="Lease owner prefix for this service's workers."
    ),
    workers: int = typer.Option(
        1, "--workers", help="Runs executed at once (0: only POST /worker/run-next)."
    ),
    keys_file: Path | None = typer.Option(
        None, "--keys-file", help="API keys by client name (TOML; see docs/service.md)."
    ),
    keys_env: str | None = typer.Option(
        None, "--keys-env", help="An env var holding 'client=key,client2=key2'."
    ),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="An env var holding one key (client name 'default')."
    ),
    allowed_roots: list[Path] = typer.Option(
        [], "--allowed-root", help="A directory configs may come from (repeatable; default: cwd)."
    ),
    output_dir: Path = typer.Option(
        Path("runs"), "--output-dir", help="Where run dirs go (shared by every host)."
    ),
    lease_seconds: float = typer.Option(
        30.0,
        "--lease-seconds",
        envvar="GEPA_CLI_SERVICE_LEASE_SECONDS",
        help="A lease not renewed for this long is requeued.",
    ),
    stale_seconds: float | None = typer.Option(
        None, "--stale-seconds", help="A worker not seen for this long is stale (default: lease)."
    ),
    shutdown_grace_seconds: float = typer.Option(
        10.0,
        "--shutdown-grace-seconds",
        help="On SIGTERM, how long running runs get to stop at a safe point before a kill.",
    ),
    poll_seconds: float = typer.Option(
        0.2, "--poll-seconds", help="How often an idle worker looks for work."
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Submitted configs and run logs (default with SQLite: <db>-data; "
        "required with PostgreSQL, shared by every host).",
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
    from gepa_cli.online.routes import online_router, proxy_keys
    from gepa_cli.service.db import redact
    from gepa_cli.service.server import build_settings, listen, serve

    settings = build_settings(
        db=db,
        output_dir=output_dir,
        allowed_roots=allowed_roots,
        worker_id=worker_id,
        workers=workers,
        keys_file=keys_file,
        keys_env=keys_env,
        api_key_env=api_key_env,
        lease_seconds=lease_seconds,
        stale_seconds=stale_seconds,
        shutdown_grace_seconds=shutdown_grace_seconds,
        poll_seconds=poll_seconds,
        data_dir=data_dir,
    )
    online = online_router(settings, proxy_keys(proxy_key_env, settings.keys))
    sock = listen(bind)
    clients = ", ".join(settings.keys.names) or "none: open to anyone who reaches it"
    typer.echo(
        f"gepa-cli service on http://{bind} (db {redact(settings.db)}, {workers} worker(s), "
        f"clients: {clients})",
        err=True,
    )
    serve(settings, sock, routers=[online])
