"""`gepa-cli workspace ...`: the state and health of many run directories."""

from __future__ import annotations

import orjson
import typer
from rich.console import Console

from gepa_cli.cli.app import new_group
from gepa_cli.workspace.render import render_status
from gepa_cli.workspace.status import workspace_status

workspace_app = new_group("Status of run directories, read in place with DuckDB.")


@workspace_app.command("status")
def status(
    runs_dir: str = typer.Argument(
        "runs", help="A runs directory, one run directory, or a quoted glob of either."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    details: bool = typer.Option(
        False,
        "--details",
        help="Also print events, cache, usage and objectives (seed vs best) per run.",
    ),
) -> None:
    """Per run: state, scores, objectives, rollouts, events, cache, usage, invariants.

    Exit 1 if an invariant is broken."""
    report = workspace_status(runs_dir)
    if as_json:
        typer.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_SORT_KEYS).decode())
    else:
        console = Console(stderr=True)
        if not console.is_terminal:
            console = Console(stderr=True, width=160)  # logs and pipes: do not squeeze columns
        render_status(report, console, details=details)
    if not report.ok:
        raise typer.Exit(1)
