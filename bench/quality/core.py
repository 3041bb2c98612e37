"""What a benchmark pair is: a task (rows, a seed text, one rollout) and a proposer.

Every engine sees a task only through `Task.rollout` (one candidate text on one example)
and a proposer only through a `ProposeFn` (the current text and the reflective records
of a minibatch in, the whole new text out), so the engines cannot differ in anything
but the search.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COOKBOOKS = ROOT / "cookbooks"


def use_cookbook(name: str) -> None:
    """Put cookbooks/<name> on sys.path, as the optimizer does for a config's folder."""
    folder = str(COOKBOOKS / name)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def run_to_end(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that never waits on IO (a cookbook's offline rollout).

    A rollout is called from inside gepa-cli's running event loop, where `asyncio.run`
    is refused; an offline rollout has nothing to wait for, so it runs to its end on
    the first step. One that does wait is an error here, not a silent hang.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("an offline rollout waited on IO; the quality bench runs only offline ones")


@dataclass(frozen=True)
class Rollout:
    """One rollout's outcome, as the container would answer it."""

    example_id: str
    inputs: Mapping[str, Any]
    output: Any
    score: float
    feedback: str
    objectives: Mapping[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The reflective record a proposer is shown (the fields gepa-cli passes)."""
        return {
            "example_id": self.example_id,
            "inputs": dict(self.inputs),
            "output": self.output,
            "score": self.score,
            "feedback": self.feedback,
        }


# (current text, reflective records) -> the whole new text
ProposeFn = Callable[[str, Sequence[Mapping[str, Any]]], str]


@dataclass(frozen=True)
class Task:
    name: str
    component: str  # the candidate field optimized
    seed_text: str
    train_ids: tuple[str, ...]
    val_ids: tuple[str, ...]
    heldout_ids: tuple[str, ...]
    rollout: Callable[[str, str], Rollout]  # (text, example id) -> its outcome
    # what the results must say about the data: source, sizes, caps, step limits
    facts: Mapping[str, Any] = field(default_factory=dict)

    def mean(self, text: str, example_ids: Sequence[str]) -> float:
        return sum(self.rollout(text, e).score for e in example_ids) / len(example_ids)


@dataclass(frozen=True)
class Options:
    """The task options of the command line (each task reads the ones it needs)."""

    data_dir: Path
    val_cap: int = 200
    heldout_cap: int = 500
    crafter_steps: int = 150


@dataclass(frozen=True)
class Pair:
    key: str  # results go to bench/results/quality_<key>.{md,json}
    title: str
    load: Callable[[Options], Task]
    # a fresh proposer for each run: a proposer with state must not carry it across runs
    proposer: Callable[[], ProposeFn]
    budgets: tuple[int, ...] = (1000, 3000)
    # the regime the pair is built to show, and anything a reader of its numbers must know
    about: str = ""
