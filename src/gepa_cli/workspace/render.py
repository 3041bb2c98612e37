"""Human output of `workspace status` and `query` (rich tables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gepa_cli.artifacts.cost import usd
from gepa_cli.workspace.status import RunStatus, WorkspaceStatus


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _hit_rate(run: RunStatus) -> str:
    counts = run.cache.get("container.rollout", {})
    hits = counts.get("ledger_hit", 0)
    total = hits + counts.get("ledger_write", 0) + counts.get("ledger_live", 0)
    return "-" if not total else f"{hits / total:.0%}"


# More objectives than this (Crafter's 22 achievements, say) are too wide for one cell
# of the runs table: it gives their number and `--details` gives a table per run.
INLINE_OBJECTIVES = 4


def _objectives_cell(run: RunStatus) -> str:
    means = run.best_objective_means
    if not means:
        return "-"
    if len(means) > INLINE_OBJECTIVES:
        return f"{len(means)} (--details)"
    return "\n".join(f"{escape(name)} {value:.3f}" for name, value in means.items())


def objectives_table(run: RunStatus) -> Table | None:
    """Seed vs best per objective on validation, or None for a run without objectives."""
    seed, best = run.seed_objective_means, run.best_objective_means
    if not seed and not best:
        return None
    table = Table(title=f"{run.run_id}: objective means on validation", title_justify="left")
    table.add_column("objective")
    for name in ("seed", f"best ({run.best_candidate_id or '-'})", "change"):
        table.add_column(name, justify="right")
    for name in [*seed, *(k for k in best if k not in seed)]:
        s, b = seed.get(name), best.get(name)
        change = "-" if s is None or b is None else f"{b - s:+.3f}"
        table.add_row(escape(name), _score(s), _score(b), change)
    return table


def status_table(status: WorkspaceStatus) -> Table:
    table = Table(title=f"runs in {status.path}", title_justify="left")
    for name in (
        "run",
        "state",
        "best val",
        "heldout",
        "best objectives",
        "rollouts ok/failed",
        "proposals",
        "candidates",
        "cost",
        "cache hits",
        "invariants",
    ):
        left = name in ("run", "state", "best objectives")
        table.add_column(name, justify="left" if left else "right")
    for run in status.runs:
        broken = len(run.broken)
        checked = sum(1 for i in run.invariants if i.outcome != "skipped")
        table.add_row(
            run.run_id,
            run.state + (f" (pid {run.pid})" if run.state == "running" and run.pid else ""),
            _score(run.best_val_mean),
            _score(run.best_heldout_mean),
            _objectives_cell(run),
            "{}/{}".format(*(run.rollouts_by_status.get(k, 0) for k in ("completed", "failed"))),
            str(run.proposals),
            str(run.candidates),
            usd(run.cost_usd, run.cost_known),
            _hit_rate(run),
            f"{broken} broken" if broken else f"ok ({checked})",
        )
    return table


def render_status(status: WorkspaceStatus, console: Console, *, details: bool = False) -> None:
    if not status.runs:
        console.print(f"no runs in {status.path}")
        return
    console.print(status_table(status))
    if details:
        for run in status.runs:
            console.print(f"[bold]{run.run_id}[/bold] events: {run.events_by_type}")
            console.print(f"  cache: {run.cache}")
            console.print(f"  usage: {run.usage}")
            objectives = objectives_table(run)
            if objectives is not None:
                console.print(objectives)
    for run in status.runs:
        for inv in run.broken:
            console.print(f"[red]{run.run_id}: {inv.name} broken[/red]: {inv.detail}", markup=True)
            console.print(f"  fix: {inv.hint}", markup=False)


def rows_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table()
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    return table
