"""Live progress of a run, from its growing event feed (and its last checkpoint).

A `FeedProgress` folds each new complete line of ``events.jsonl`` once, by byte
offset, into the runner's own `FeedIndex`; a feed cut back to a checkpoint (a resumed
run) is folded again from the start. The ledgers are flushed at each checkpoint, so
progress is as of the run's last safe point. Live spend (what went to the network, not
replayed from the cache) is only in the checkpoint, read again when it changes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.schema import CheckpointDoc, EventLine, read_document
from gepa_cli.errors import GepaCliError
from gepa_cli.runner.feed import FeedIndex
from gepa_cli.service.events import FeedTail


class FeedProgress:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._reset()
        self._checkpoint_stamp: tuple[int, int] | None = None
        self.spent_usd: float | None = None
        self.spent_known = True  # False once a live call had no price
        self.lock = threading.Lock()

    def _reset(self) -> None:
        self.tail = FeedTail(self.run_dir / layout.EVENTS)
        self.index = FeedIndex()
        self.events = 0
        self.last: EventLine | None = None
        self.limits: dict[str, Any] = {}

    def update(self) -> FeedProgress:
        with self.lock:
            try:
                size = (self.run_dir / layout.EVENTS).stat().st_size
            except OSError:
                size = 0
            if size < self.tail.offset:
                self._reset()  # truncated back to a checkpoint by a resume
            for line in self.tail.read():
                try:
                    event = EventLine.model_validate_json(line)
                except ValidationError:
                    continue  # not an event line: leave it to replay --check to report
                self.index.fold(event.type, event.data)
                self.events = event.seq + 1
                self.last = event
                if event.type == "budget.updated":
                    self.limits = dict(event.data.get("limits") or {})
            self._read_spend()
        return self

    def _read_spend(self) -> None:
        path = self.run_dir / layout.CHECKPOINT
        try:
            stat = path.stat()
        except OSError:
            return
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp == self._checkpoint_stamp:
            return
        try:
            doc = read_document(path, CheckpointDoc)
        except GepaCliError:
            return  # replaced while read: the next update reads the new one
        self._checkpoint_stamp = stamp
        if doc is not None:
            self.spent_usd = doc.runner.spend.spent_usd
            self.spent_known = doc.runner.spend.spent_known

    @property
    def budget(self) -> dict[str, Any]:
        return dict(self.index.budget or {})

    def view(self) -> dict[str, Any] | None:
        """The live fields; None before the run wrote its first event."""
        if self.last is None:
            return None
        budget, frontier = self.budget, self.index.frontier
        return {
            "events": self.events,
            "last_event": {"seq": self.last.seq, "type": self.last.type, "ts": self.last.ts},
            "iteration": self.index.iterations,
            "rollouts": budget.get("rollouts"),
            "max_total_rollouts": self.limits.get("max_total_rollouts"),
            "proposals": budget.get("proposals"),
            "candidates": len(self.index.registered),
            "best_candidate_id": frontier.best_candidate_id if frontier else None,
            "best_val_mean": frontier.best_val_mean if frontier else None,
            "cost_usd": budget.get("cost_usd"),
            # unknown is not zero: a cost without a price for some call is only a part
            "cost_known": bool(budget.get("cost_known", True)),
            "spent_usd": self.spent_usd,
            "spent_known": self.spent_known,
            "finished": self.index.finished is not None,
        }


class ProgressBoard:
    """One `FeedProgress` per run directory, for the most recently asked runs."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._runs: OrderedDict[str, FeedProgress] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, run_dir: str | Path) -> FeedProgress:
        key = str(run_dir)
        with self._lock:
            progress = self._runs.pop(key, None) or FeedProgress(Path(run_dir))
            self._runs[key] = progress
            while len(self._runs) > self.capacity:
                self._runs.popitem(last=False)
        return progress.update()
