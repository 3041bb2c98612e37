"""`gepa-cli show | diff | report`: thin commands over `gepa_cli.view`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console

from gepa_cli.cli.app import one_command
from gepa_cli.view import (
    RunView,
    candidate_facts,
    diff_sides,
    frontier_facts,
    frontier_table,
    print_diff,
    resolve,
    selected_texts,
    texts_output,
    write_report,
)

RUN_DIR = typer.Argument(..., help="A run directory (finished, stopped, running or failed).")
MODULE_OPTION = typer.Option(None, "--module", "-m", help="Only this module's text.")


show_app, diff_app, report_app = one_command(), one_command(), one_command()


def _json(payload: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")


@show_app.command("show", short_help="Print a candidate's texts, its scores or the frontier.")
def show(
    run_dir: Path = RUN_DIR,
    candidate: str = typer.Argument("best", help="best, seed or a candidate id."),
    module: str | None = MODULE_OPTION,
    frontier: bool = typer.Option(
        False, "--frontier", help="List the Pareto frontier's members with their scores."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Texts with scores and lineage (or the frontier) as JSON."
    ),
) -> None:
    """Print a candidate's texts, raw, so they pipe into a file (the best by default)."""
    view = RunView.load(run_dir)
    if frontier:
        facts = frontier_facts(view)
        if as_json:
            _json(facts)
            return
        Console(width=max(100, Console().width)).print(frontier_table(facts))
        return
    if as_json:
        facts = candidate_facts(view, view.candidate(candidate))
        if module is not None:
            facts["texts"] = {module: texts_output(facts["texts"], module)}
        _json(facts)
        return
    text = texts_output(selected_texts(view, candidate), module)
    sys.stdout.buffer.write(text.encode("utf-8"))
    if sys.stdout.isatty() and not text.endswith("\n"):
        sys.stdout.buffer.write(b"\n")  # only a terminal gets a newline the text lacks
    sys.stdout.buffer.flush()


@diff_app.command("diff", short_help="Diff two candidates' texts, like diff(1).")
def diff(
    run_dir: Path = RUN_DIR,
    a: str = typer.Argument("seed", help="best, seed, a candidate id, or RUN_DIR2:REF."),
    b: str = typer.Argument("best", help="best, seed, a candidate id, or RUN_DIR2:REF."),
    module: str | None = MODULE_OPTION,
) -> None:
    """Unified diff of two candidates' texts per module. Exit 0 equal, 1 different."""
    view = RunView.load(run_dir)
    diffs = diff_sides(resolve(view, a), resolve(view, b))
    if module is not None:
        diffs = [d for d in diffs if d.module == module]
    if not diffs:
        return
    print_diff(diffs, Console(highlight=False, soft_wrap=True))
    raise typer.Exit(1)


@report_app.command("report", short_help="Write an HTML report with plots that opens offline.")
def report(
    run_dirs: list[Path] = typer.Argument(
        ...,
        metavar="RUN_DIR",
        help="One or more run directories; several overlay their score curves.",
    ),
    output: Path = typer.Option(
        Path("report.html"), "--output", "-o", help="The HTML file to write."
    ),
) -> None:
    """Write one self-contained HTML report (plots included) that opens offline."""
    written = write_report(run_dirs, output)
    typer.echo(f"wrote {written} ({written.stat().st_size:,} bytes)", err=True)
