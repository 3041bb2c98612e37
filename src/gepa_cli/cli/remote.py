"""`gepa-cli remote ...`: the run service from a terminal, over `gepa_cli.client`.

Every command takes ``--url`` and ``--key`` (or GEPA_CLI_SERVICE_URL and
GEPA_CLI_SERVICE_KEY) and ``--json`` (machine output on stdout). Exit codes:
0 done (``wait``: the run succeeded); 1 the run failed, was cancelled or paused, the
wait timed out, or the service failed or did not answer; 2 the service refused the
request (bad config, unknown run, wrong key, a state that forbids it) or bad usage.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import typer

from gepa_cli.artifacts import write_bytes_atomic
from gepa_cli.cli.app import new_group
from gepa_cli.client import KEY_ENV, URL_ENV, ServiceClient, ServiceRequestError
from gepa_cli.errors import GepaCliError

remote_app = new_group("Submit, watch and fetch runs of a run service (gepa service).")

URL = typer.Option(None, "--url", envvar=URL_ENV, help="The service's URL.", show_envvar=True)
KEY = typer.Option(
    None, "--key", envvar=KEY_ENV, help="An API key of the service.", show_envvar=True
)
JSON = typer.Option(False, "--json", help="Machine output (JSON) on stdout.")
RUN = typer.Argument(..., help="A request id or run id.")


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


@contextmanager
def _client(url: str | None, key: str | None, as_json: bool) -> Iterator[ServiceClient]:
    """A client; a refusal or failure of the service ends the command with its code."""
    try:
        with ServiceClient(url, key) as client:
            yield client
    except GepaCliError as error:
        # a service's refusal carries its own code (not_found, conflict, ...)
        code = error.code if isinstance(error, ServiceRequestError) else error.error_code
        if as_json:
            status = error.status if isinstance(error, ServiceRequestError) else None
            _print_json({"error": {"code": code, "status": status, "message": error.one_line()}})
        typer.echo(f"error [{code}]: {error.one_line()}", err=True)
        raise typer.Exit(error.exit_code) from None


def _show(value: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        _print_json(value)
    else:
        typer.echo(human(value))


def _line(run: dict[str, Any]) -> str:
    progress = run.get("progress") or {}
    best = progress.get("best_val_mean") or (run.get("manifest") or {}).get("best_val_mean")
    rollouts = (progress.get("rollouts") or {}).get("total")
    extra = "".join(
        [
            f" best {best:.3f}" if isinstance(best, float) else "",
            f" rollouts {rollouts}" if rollouts is not None else "",
            f" ({run['error']['message']})" if run.get("error") else "",
        ]
    )
    return f"{run['request_id']}  {run['run_id']}  {run['status']}{extra}"


def _settled_exit(run: dict[str, Any]) -> None:
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@remote_app.command("submit")
def submit(
    config: Path | None = typer.Argument(None, help="A local config file ('-': stdin)."),
    server_path: str | None = typer.Option(
        None, "--server-path", help="A config file on the service's side instead."
    ),
    base_dir: str | None = typer.Option(
        None, "--base-dir", help="Where the config's relative paths resolve, service side."
    ),
    priority: int = typer.Option(0, "--priority", help="Higher runs first."),
    paused: bool = typer.Option(False, "--paused", help="Queue it held until resumed."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the run to settle."),
    url: str | None = URL,
    key: str | None = KEY,
    as_json: bool = JSON,
) -> None:
    """Queue a run; with --wait, exit 0 only if it succeeded."""
    text = sys.stdin.read() if config == Path("-") else None
    with _client(url, key, as_json) as client:
        queued = client.submit(
            None if text is not None else config,
            text=text,
            server_path=server_path,
            base_dir=base_dir,
            priority=priority,
            paused=paused,
        )
        if wait:
            queued = client.wait(queued["request_id"])
        _show(queued, as_json, _line)
    if wait:
        _settled_exit(queued)


@remote_app.command("list")
def list_runs(
    status: str | None = typer.Option(None, "--status", help="Only runs in this status."),
    client_name: str | None = typer.Option(None, "--client", help="Only this client's runs."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    url: str | None = URL,
    key: str | None = KEY,
    as_json: bool = JSON,
) -> None:
    """Runs, oldest first, a page at a time."""
    with _client(url, key, as_json) as client:
        page = client.runs(status=status, client=client_name, limit=limit, offset=offset)
    if as_json:
        _print_json(page)
        return
    for run in page["runs"]:
        typer.echo(_line(run))
    typer.echo(f"{len(page['runs'])} of {page['total']} (offset {offset})", err=True)


@remote_app.command("show")
def show(
    run: str = RUN, url: str | None = URL, key: str | None = KEY, as_json: bool = JSON
) -> None:
    """A run's request, with live progress while it runs."""
    with _client(url, key, as_json) as client:
        _show(client.get(run), as_json, _line)


@remote_app.command("summary")
def summary(
    run: str = RUN, url: str | None = URL, key: str | None = KEY, as_json: bool = JSON
) -> None:
    """A run's result so far (its live feed while it runs, else its manifest)."""

    def human(s: dict[str, Any]) -> str:
        fields = ("state", "stopped_by", "best_candidate_id", "best_val_mean", "seed_val_mean")
        return "\n".join(f"{name}: {s.get(name)}" for name in ("run_id", "status", *fields))

    with _client(url, key, as_json) as client:
        _show(client.summary(run), as_json, human)


@remote_app.command("wait")
def wait(
    run: str = RUN,
    timeout: float | None = typer.Option(None, "--timeout", help="Give up after this long."),
    url: str | None = URL,
    key: str | None = KEY,
    as_json: bool = JSON,
) -> None:
    """Wait until the run settles; exit 0 only if it succeeded."""
    with _client(url, key, as_json) as client:
        settled = client.wait(run, timeout=timeout)
        _show(settled, as_json, _line)
    _settled_exit(settled)


@remote_app.command("events")
def events(
    run: str = RUN,
    after: int = typer.Option(-1, "--after", help="Only events after this seq."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """The run's events as JSON lines, live, until it settles (resumes dropped streams)."""
    with _client(url, key, True) as client:
        for event in client.events(run, after=after):
            sys.stdout.write(orjson.dumps(event).decode() + "\n")
            sys.stdout.flush()


@remote_app.command("logs")
def logs(
    run: str = RUN,
    stream: str = typer.Option("stderr", "--stream", help="stdout or stderr (the run's)."),
    tail: int | None = typer.Option(None, "--tail", help="Only the last N lines."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it stops."),
    url: str | None = URL,
    key: str | None = KEY,
) -> None:
    """The run's own stdout or stderr."""
    with _client(url, key, False) as client:
        if follow:
            for chunk in client.follow_logs(run, stream=stream, tail=tail):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        else:
            sys.stdout.write(client.logs(run, stream=stream, tail=tail))


@remote_app.command("artifact")
def artifact(
    run: str = RUN,
    write: Path | None = typer.Option(
        None, "--write", help="Write <module>.txt per text, manifest.json and frontier.json here."
    ),
    url: str | None = URL,
    key: str | None = KEY,
    as_json: bool = JSON,
) -> None:
    """The best candidate's texts, the manifest and the frontier of a run that stopped."""
    with _client(url, key, as_json) as client:
        found = client.artifact(run)
    texts: dict[str, str] = found["best_candidate"]["texts"]
    if write is not None:
        write.mkdir(parents=True, exist_ok=True)
        for module, text in texts.items():
            write_bytes_atomic(write / f"{module}.txt", text.encode("utf-8"))
        for name in ("manifest", "frontier"):
            if found[name] is not None:
                data = orjson.dumps(found[name], option=orjson.OPT_INDENT_2) + b"\n"
                write_bytes_atomic(write / f"{name}.json", data)
    if as_json:
        _print_json(found)
        return
    best = found["best_candidate"]
    typer.echo(f"# {found['run_id']}: best candidate {best['id']} (val {best['val_mean']})")
    for module, text in texts.items():
        typer.echo(f"\n## {module}\n{text}")


@remote_app.command("candidates")
def candidates(
    run: str = RUN, url: str | None = URL, key: str | None = KEY, as_json: bool = JSON
) -> None:
    """The run's candidates, in registration order."""
    with _client(url, key, as_json) as client:
        page = client.candidates(run)
    if as_json:
        _print_json(page)
        return
    for row in page["candidates"]:
        typer.echo(f"{row['candidate_id']}  val {row['val_mean']:.3f}  parents {row['parents']}")


def _control(action: str) -> Callable[..., None]:
    def command(
        run: str = RUN,
        reason: str | None = typer.Option(None, "--reason", help="Recorded with the request."),
        url: str | None = URL,
        key: str | None = KEY,
        as_json: bool = JSON,
    ) -> None:
        with _client(url, key, as_json) as client:
            _show(getattr(client, action)(run, reason=reason), as_json, _line)

    command.__doc__ = {
        "pause": "Pause a run at its next safe point (or hold a queued one).",
        "cancel": "Cancel a run at its next safe point (or a queued one at once).",
    }[action]
    return command


for _action in ("pause", "cancel"):
    remote_app.command(_action)(_control(_action))


@remote_app.command("resume")
def resume(
    run: str = RUN, url: str | None = URL, key: str | None = KEY, as_json: bool = JSON
) -> None:
    """Queue a paused run again; it continues from its checkpoint."""
    with _client(url, key, as_json) as client:
        _show(client.resume(run), as_json, _line)


@remote_app.command("delete")
def delete(
    run: str = RUN,
    purge: bool = typer.Option(False, "--purge", help="Also delete its run directory and logs."),
    url: str | None = URL,
    key: str | None = KEY,
    as_json: bool = JSON,
) -> None:
    """Forget a finished run (succeeded, failed or cancelled)."""
    with _client(url, key, as_json) as client:
        _show(client.delete(run, purge=purge), as_json, lambda d: f"deleted {d['request_id']}")


@remote_app.command("queue")
def queue(url: str | None = URL, key: str | None = KEY, as_json: bool = JSON) -> None:
    """The shared queue: pending and active requests, workers alive and stale."""

    def human(q: dict[str, Any]) -> str:
        lines = [
            f"pending {q['pending']}  held {q['held']}  active {q['active']}  "
            f"workers {q['workers_alive']} alive, {q['workers_stale']} stale"
        ]
        lines += [
            f"  {w['worker_id']} on {w['host']}: {w['state']}"
            f"{' STALE' if w['stale'] else ''} (seen {w['seen_seconds_ago']:.1f}s ago)"
            for w in q["workers"]
        ]
        return "\n".join(lines)

    with _client(url, key, as_json) as client:
        _show(client.queue(), as_json, human)


@remote_app.command("health")
def health(url: str | None = URL, key: str | None = KEY, as_json: bool = JSON) -> None:
    """The service's health; exit 1 unless it is ok."""
    with _client(url, key, as_json) as client:
        found = client.health()
    _show(found, as_json, lambda h: f"{h['status']} (version {h['version']})")
    if found["status"] != "ok":
        raise typer.Exit(1)
