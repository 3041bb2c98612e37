"""A live progress line on stderr, fed by the run's events (never by the engine itself)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressDisplay:
    """Rollouts used of budget, best validation score, candidates, cache hits, live spend."""

    def __init__(
        self,
        console: Console,
        total_rollouts: int | None,
        live_stats: Callable[[], tuple[int, float]] = lambda: (0, 0.0),
    ) -> None:
        self.live_stats = live_stats
        self.progress = Progress(
            TextColumn("[bold]gepa[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("starting", total=total_rollouts)
        self.best: float | None = None
        self.candidates = 0
        self.hits = 0
        self.rollouts = 0

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_event(self, event: Mapping[str, Any]) -> None:
        kind, data = event["type"], event["data"]
        if kind == "budget.updated":
            self.rollouts = int(data["rollouts"]["total"])
        elif kind == "candidate.registered":
            self.candidates += 1
        elif kind == "frontier.updated":
            self.best = data.get("best_val_mean")
        elif kind == "evaluation.completed":
            self.hits += int(data.get("memo_hits", 0))
        else:
            return
        best = "-" if self.best is None else f"{self.best:.3f}"
        hits, spent = self.live_stats()
        self.progress.update(
            self.task,
            completed=self.rollouts,
            description=f"best val {best} | candidates {self.candidates} | cache hits {hits} "
            f"| spent ${spent:.4f}",
        )
