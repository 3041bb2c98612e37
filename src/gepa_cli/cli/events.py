"""`gepa-cli events ...`: replay, normalize and compare event feeds."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer

from gepa_cli.artifacts.compare import compare_feeds
from gepa_cli.artifacts.events import normalize_file
from gepa_cli.artifacts.replay import (
    check_artifacts,
    format_summary,
    format_timeline,
    replay_events,
)
from gepa_cli.cli.app import new_group

events_app = new_group("Replay, normalize and compare event feeds (events.jsonl).")


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
    left: Path = typer.Option(
        ..., "--left", help="First feed (raw or normalized), or a run directory."
    ),
    right: Path = typer.Option(
        ..., "--right", help="Second feed (raw or normalized), or a run directory."
    ),
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


@events_app.command("replay")
def replay(
    events: Path = typer.Option(..., "--events", help="An events.jsonl feed."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Compare with candidates.jsonl, frontier.json, manifest.json and rollouts.jsonl "
        "next to the feed.",
    ),
    as_json: bool = typer.Option(False, "--json", help="The rebuilt state as JSON on stdout."),
) -> None:
    """Rebuild a run from its feed alone. Exit 0 ok, 1 --check found disagreements, 2 error."""
    state = replay_events(events)
    report = check_artifacts(state) if check else None
    if as_json:
        payload = state.to_dict()
        if report is not None:
            payload["check"] = report.to_dict()
        typer.echo(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode())
    else:
        for line in (*format_timeline(state), "", *format_summary(state)):
            typer.echo(line)
        if report is not None:
            if report.ok:
                typer.echo(f"check: ok ({', '.join(report.checked)} agree with the feed)")
            for disagreement in report.disagreements:
                typer.echo(f"check: {disagreement.line()}")
    if report is not None and not report.ok:
        raise typer.Exit(1)
