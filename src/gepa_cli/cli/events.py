"""`gepa-cli events ...`: normalize and compare event feeds."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer

from gepa_cli.artifacts.compare import compare_feeds
from gepa_cli.artifacts.events import normalize_file
from gepa_cli.cli.app import new_group

events_app = new_group("Normalize and compare event feeds (events.jsonl).")


@events_app.command("normalize")
def normalize(
    source: Path = typer.Argument(..., help="An events.jsonl feed."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (atomically) instead of stdout."
    ),
) -> None:
    """Drop volatile fields (times, paths, ports, cache actions) from an event feed."""
    payload = normalize_file(source, output)
    if output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        typer.echo(f"wrote {output}", err=True)


@events_app.command("compare")
def compare(
    left: Path = typer.Option(..., "--left", help="First feed (raw or normalized)."),
    right: Path = typer.Option(..., "--right", help="Second feed (raw or normalized)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Compare two feeds after normalizing both. Exit 0 identical, 1 different, 2 error."""
    result = compare_feeds(left, right)
    if as_json:
        typer.echo(orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS))
    else:
        typer.echo(result.summary(), err=True)
    if not result.identical:
        raise typer.Exit(1)
