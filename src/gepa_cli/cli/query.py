"""`gepa-cli query "SQL"`: SQL over the workspace views (runs, events, rollouts, ...)."""

from __future__ import annotations

import csv
import sys
from typing import Any

import orjson
import typer
from rich.console import Console

from gepa_cli.cli.app import one_command
from gepa_cli.errors import ConfigError
from gepa_cli.workspace.render import rows_table
from gepa_cli.workspace.views import Workspace

FORMATS = ("table", "json", "csv")
query_app = one_command()


def _plain(value: Any) -> Any:
    # DECIMAL, dates and other DuckDB values that are not JSON print as text
    return str(value)


@query_app.command("query")
def query(
    sql: str = typer.Argument(
        ...,
        help="SQL over the views runs, events, rollouts, proposals, candidates, frontier, cache.",
    ),
    runs: str = typer.Option(
        "runs", "--runs", help="A runs directory, one run directory, or a quoted glob."
    ),
    fmt: str = typer.Option("table", "--format", help="table | json | csv (on stdout)."),
) -> None:
    """Run SQL over run directories read in place. Bad SQL exits 2 with DuckDB's message."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}", hint="use table, json or csv")
    with Workspace.open(runs) as ws:
        names, rows = ws.query(sql)
    if fmt == "json":
        records = [dict(zip(names, row, strict=True)) for row in rows]
        sys.stdout.buffer.write(orjson.dumps(records, default=_plain) + b"\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
    else:
        Console(width=200).print(rows_table(names, rows))
