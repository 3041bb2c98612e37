"""`gepa-cli gepa run | resume | stop`: thin commands over `gepa_cli.runner`."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import orjson
import typer
from rich.console import Console

from gepa_cli.artifacts.cost import usd
from gepa_cli.cli.gepa import CONFIG_OPTION, JSON_OPTION, gepa_app
from gepa_cli.errors import GepaCliError, ResumeError
from gepa_cli.runner import GepaRun, RunResult, request_stop, summary
from gepa_cli.runner.progress import ProgressDisplay


def _execute(run: GepaRun, as_json: bool) -> None:
    console = Console(stderr=True)
    # a live display only for a person at a terminal: logs and pipes get the summary
    show_progress = not as_json and sys.stderr.isatty()
    display = (
        ProgressDisplay(
            console, run.config.gepa.max_total_rollouts, run.live_stats, run.elapsed_seconds
        )
        if show_progress
        else None
    )
    if display is not None:
        run.on_event(display.on_event)
    try:
        with display if display is not None else nullcontext():
            result = run.execute()
    except GepaCliError:
        # a run that failed after validating its seed still found something: say what,
        # then the error line says why it stopped and how to go on
        if run.last_result is not None and run.last_result.manifest.get("seed_candidate"):
            _report(run.last_result, as_json)
        raise
    _report(result, as_json)


def _report(result: RunResult, as_json: bool) -> None:
    facts = summary(result)
    if as_json:
        typer.echo(orjson.dumps(facts, option=orjson.OPT_INDENT_2).decode())
        return

    def score(value: object) -> str:
        return "-" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]

    def counted(counts: dict[str, int] | None) -> str:
        if not counts:
            return "none"
        parts = ", ".join(f"{kind} {n}" for kind, n in counts.items() if kind != "total")
        return f"{counts.get('total', 0)}" + (f" ({parts})" if parts else "")

    manifest = result.manifest
    recorded = usd(manifest["cost_usd"], bool(manifest.get("cost_known", True)))
    spent = usd(manifest["spent_usd"], bool(manifest.get("spent_known", True)))
    lines = [
        f"run {facts['run_id']} {facts['state']} (stopped by {facts['stopped_by']})",
        f"  validation: seed {score(facts['seed_val_mean'])} -> best "
        f"{score(facts['best_val_mean'])} ({facts['best_candidate_id']})",
        f"  heldout:    seed {score(facts['seed_heldout_mean'])} -> best "
        f"{score(facts['best_heldout_mean'])}",
        f"  rollouts:   {counted(facts['rollouts'])}",
        f"  proposals:  {counted(facts['proposals'])}",
        f"  cost:       {recorded} recorded, {spent} spent live",
    ]
    if facts["cost_note"]:
        lines.append(f"              {facts['cost_note']}")
    lines.append(f"  artifacts:  {facts['run_dir']}")
    typer.echo("\n".join(lines), err=True)


@gepa_app.command("run")
def run(
    config: Path = CONFIG_OPTION,
    run_id: str | None = typer.Option(None, "--run-id", help="Run id (default: generated)."),
    cache_mode: str | None = typer.Option(
        None, "--cache-mode", help="Override [cache] mode: off, readwrite or readonly."
    ),
    cache_path: Path | None = typer.Option(
        None, "--cache-path", help="Override [cache] path (e.g. a committed recording)."
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", help="Override [run] output_dir (where run directories go)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run one GEPA optimization and write its run directory."""
    run = GepaRun.from_toml(
        config, run_id=run_id, cache_mode=cache_mode, cache_path=cache_path, output_dir=output_dir
    )
    _execute(run, as_json)


@gepa_app.command("resume")
def resume(
    run_dir: Path = typer.Argument(..., help="The run directory to continue."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Config to continue with (default: the run's own)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Continue a stopped, interrupted or crashed run from its last checkpoint."""
    _execute(GepaRun.resume(run_dir, config_path=config), as_json)


@gepa_app.command("stop")
def stop(run_dir: Path = typer.Argument(..., help="The run directory of a running run.")) -> None:
    """Ask a running run to stop at its next safe point (it can be resumed)."""
    if not run_dir.is_dir():
        raise ResumeError(f"run directory {run_dir} does not exist", hint="check the path")
    stop_file = request_stop(run_dir)
    typer.echo(f"stop requested: {stop_file}", err=True)
