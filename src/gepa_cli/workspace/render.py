"""Human output of `workspace status` and `query` (rich tables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
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


def status_table(status: WorkspaceStatus) -> Table:
    table = Table(title=f"runs in {status.path}", title_justify="left")
    for name in (
        "run",
        "state",
        "best val",
        "heldout",
        "rollouts ok/failed",
        "proposals",
        "candidates",
        "cost",
        "cache hits",
        "invariants",
    ):
        table.add_column(name, justify="left" if name in ("run", "state") else "right")
    for run in status.runs:
        broken = len(run.broken)
        checked = sum(1 for i in run.invariants if i.outcome != "skipped")
        table.add_row(
            run.run_id,
            run.state + (f" (pid {run.pid})" if run.state == "running" and run.pid else ""),
            _score(run.best_val_mean),
            _score(run.best_heldout_mean),
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
