"""`gepa-cli cache ...`: inspect and verify a response cache."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from gepa_cli.cli.app import new_group
from gepa_cli.runtime.cache_inspect import inspect_cache, render_inspection

cache_app = new_group("Inspect and verify the response cache.")


@cache_app.command("inspect")
def inspect(
    path: Path = typer.Option(Path(".gepa-cache"), "--path", help="The cache directory."),
    namespace: str | None = typer.Option(None, "--namespace", help="Only this namespace."),
    runs: Path = typer.Option(
        Path("runs"), "--runs", help="Sum hits/misses/writes from cache_profile.json here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    verify: bool = typer.Option(
        False, "--verify", help="Re-read every entry and list corrupt ones (exit 1 if any)."
    ),
) -> None:
    """Entries and bytes by namespace and boundary, and usage summed from run profiles."""
    report = inspect_cache(path, namespace=namespace, runs_dir=runs, verify=verify)
    if as_json:
        typer.echo(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS))
    else:
        typer.echo(render_inspection(report), err=True)
    if report.corrupt:
        raise typer.Exit(1)
