"""A live progress display on stderr, fed by the run's events and the runner's live
counters (never by the engine itself).

Two lines that fit 80 columns: the rollout bar with its count and the elapsed time,
and what the run found so far (best score, candidates, proposals by outcome, spend).
The count and the time never give way: the bar shrinks, the second line wraps. It
moves between events too: rollouts coming back during a long evaluation (the seed
validation is one batch), and a clock on a proposer call that takes a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.table import Column
from rich.text import Text

from gepa_cli.artifacts.cost import usd


@dataclass(frozen=True)
class LiveStats:
    """What the runner knows between events (see `GepaRun.live_stats`)."""

    cache_hits: int = 0
    spent_usd: float = 0.0
    spent_known: bool = True
    # rollouts the container has answered that the engine has not charged yet
    rollouts_back: int = 0
    # seconds each proposer call now under way has been waiting for its answer
    proposing_seconds: tuple[float, ...] = ()
    # the splits being evaluated now ("train", "val", "heldout")
    evaluating: tuple[str, ...] = ()


@dataclass
class _Counts:
    rollouts: int = 0
    best: float | None = None
    candidates: int = 0
    proposals: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    phase: str = "starting"
    finished: bool = False

    # proposals already given an outcome: the tip of a chain is "extended", then its
    # verdict comes again if it is validated at the end; the first outcome stands, as
    # in the proposals ledger
    settled: set[str] = field(default_factory=set)

    def add(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n

    def settle(self, outcome: str, proposal_ids: Iterable[Any]) -> None:
        new = {str(pid) for pid in proposal_ids} - self.settled
        if new:
            self.settled |= new
            self.add(outcome, len(new))


# proposal outcomes in the order they are shown; "unusable": an answer the proposer
# could not use (no fenced text, cut off...), "failed": the call itself failed;
# "extended": passed its minibatch, waiting to be validated as the tip of a chain;
# "unvalidated": passed its minibatch, but the budget had no room left to validate it
OUTCOMES = (
    "accepted",
    "extended",
    "rejected",
    "duplicate",
    "dropped",
    "unvalidated",
    "unusable",
    "failed",
)


class _CountColumn(ProgressColumn):
    """``123/1500 rollouts``: never wrapped or cut."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True, justify="right"))

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        total = f"/{int(task.total)}" if task.total is not None else ""
        return Text(f"{done}{total} rollouts")


class _ElapsedColumn(ProgressColumn):
    """``0:03:12``, from the run's own clock so a resumed run goes on counting."""

    def __init__(self, elapsed: Callable[[], float]) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.elapsed = elapsed

    def render(self, task: Task) -> Text:
        seconds = int(self.elapsed())
        return Text(f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")


class _PhaseColumn(ProgressColumn):
    def __init__(self, phase: Callable[[], str]) -> None:
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis"))
        self.phase = phase

    def render(self, task: Task) -> Text:
        return Text(self.phase(), style="dim")


class _Parts:
    """Facts joined by " · ", wrapped between facts, never inside one."""

    SEPARATOR = " · "
    INDENT = "  "

    def __init__(self, parts: list[str]) -> None:
        self.parts = parts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 20)
        line = self.INDENT
        for part in self.parts:
            joined = part if line == self.INDENT else self.SEPARATOR + part
            if line != self.INDENT and len(line) + len(joined) > width:
                yield Text(line)
                line, joined = self.INDENT, part
            line += joined
        yield Text(line, overflow="fold")


class _TwoLines(Progress):
    """A progress bar with a second line, both brought up to date at every refresh."""

    def __init__(
        self,
        before_render: Callable[[], None],
        second_line: Callable[[], RenderableType],
        *args: Any,
        **kw: Any,
    ) -> None:
        # set first: the base class renders once while it is built
        self.before_render = before_render
        self.second_line = second_line
        super().__init__(*args, **kw)

    def get_renderables(self) -> Iterable[RenderableType]:
        self.before_render()
        yield self.make_tasks_table(self.tasks)
        yield self.second_line()


class ProgressDisplay:
    """Rollouts used of the budget, best validation score, candidates, proposals by
    outcome, live spend; `on_event` is the run's event listener."""

    def __init__(
        self,
        console: Console,
        total_rollouts: int | None,
        live_stats: Callable[[], LiveStats] = LiveStats,
        elapsed: Callable[[], float] | None = None,
        *,
        auto_refresh: bool = True,
    ) -> None:
        self.live_stats = live_stats
        self.counts = _Counts()
        self._shown = 0
        self.total = total_rollouts
        clock = elapsed if elapsed is not None else self._task_elapsed
        self.progress = _TwoLines(
            self._show,
            self.stats_line,
            SpinnerColumn(),
            TextColumn("[bold]gepa[/bold]"),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=6)),
            _CountColumn(),
            _ElapsedColumn(clock),
            _PhaseColumn(self.phase),
            console=console,
            transient=False,
            expand=True,
            auto_refresh=auto_refresh,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task("gepa", total=total_rollouts)

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._show()
        self.progress.stop()

    def _task_elapsed(self) -> float:
        return (self.progress.tasks[0].elapsed or 0.0) if self.progress.tasks else 0.0

    # -- what is shown ----------------------------------------------------------------
    def completed(self) -> int:
        """Rollouts charged, plus those already back from the container for work the
        engine has not charged yet (so the bar moves during one long evaluation)."""
        counts = self.counts
        if counts.finished:
            return counts.rollouts
        done = counts.rollouts + self.live_stats().rollouts_back
        if self.total is not None:
            done = min(done, self.total)
        # never backwards: work fetched ahead (overlapping iterations) is charged later
        self._shown = max(self._shown, done)
        return self._shown

    def phase(self) -> str:
        counts = self.counts
        if counts.finished:
            return "done"
        live = self.live_stats()
        waiting = live.proposing_seconds
        if waiting:
            calls = f"{len(waiting)} proposals" if len(waiting) > 1 else "proposing"
            return f"{calls} {int(max(waiting))}s"
        # no event opens the end of a run: its heldout rollouts say it has begun
        if "heldout" in live.evaluating:
            return "heldout"
        return counts.phase

    def stats_line(self) -> RenderableType:
        counts, live = self.counts, self.live_stats()
        best = "-" if counts.best is None else f"{counts.best:.3f}"
        outcomes = ", ".join(
            f"{counts.outcomes[name]} {name}" for name in OUTCOMES if counts.outcomes.get(name)
        )
        proposals = f"{counts.proposals} proposals" + (f" ({outcomes})" if outcomes else "")
        parts = [
            f"best val {best}",
            f"{counts.candidates} candidates",
            proposals,
            f"spent {usd(live.spent_usd, live.spent_known)}",
        ]
        if live.cache_hits:
            parts.append(f"{live.cache_hits} cache hits")
        return _Parts(parts)

    def _show(self) -> None:
        if getattr(self, "task", None) is not None:  # not while the display is being built
            self.progress.update(self.task, completed=self.completed())

    def render(self) -> RenderableType:
        """What the display shows now (as the terminal would get it at a refresh)."""
        return self.progress.get_renderable()

    # -- events -----------------------------------------------------------------------
    def on_event(self, event: Mapping[str, Any]) -> None:
        kind, data = event["type"], event["data"]
        counts = self.counts
        if kind == "run.started":
            counts.phase = "validating the seed"
        elif kind == "iteration.started":
            counts.phase = f"iteration {data.get('iteration')}"
        elif kind in ("evaluation.completed", "evaluation.discarded"):
            counts.rollouts += int(data.get("rollouts", 0))
            if data.get("purpose") == "heldout":
                counts.phase = "heldout"
        elif kind == "budget.updated":
            counts.rollouts = int(data["rollouts"]["total"])
        elif kind == "candidate.registered":
            counts.candidates += 1
        elif kind == "frontier.updated":
            counts.best = data.get("best_val_mean")
        elif kind == "proposal.completed":
            counts.proposals += 1
        elif kind == "proposal.failed":
            counts.proposals += 1
            counts.add("failed" if data.get("kind") == "error" else "unusable")
        elif kind in ("candidate.accepted", "candidate.rejected", "candidate.duplicate"):
            counts.settle(kind.split(".")[1], data.get("proposal_ids") or [])
        elif kind == "chain.extended":
            counts.settle("extended", data.get("proposal_ids") or [])
        elif kind == "chain.abandoned":
            counts.settle("unvalidated", data.get("proposal_ids") or [])
        elif kind == "candidate.dropped":
            counts.add("dropped")
        elif kind == "heldout.completed" or kind == "heldout.skipped":
            counts.phase = "heldout"
        elif kind == "run.finished":
            # the engine's own totals: the last numbers shown are the run's
            budget = data.get("budget") or {}
            counts.rollouts = int((budget.get("rollouts") or {}).get("total", counts.rollouts))
            counts.proposals = int(budget.get("proposals", counts.proposals))
            counts.best = data.get("best_val_mean", counts.best)
            counts.candidates = int(data.get("num_candidates", counts.candidates))
            counts.finished = True
        else:
            return
        self._show()
