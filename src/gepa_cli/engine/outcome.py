"""How a run ended: one record that the engine fills, emits as ``run.finished`` and
returns, and that the runner builds the manifest from.

A plain frozen dataclass (the engine stays free of pydantic). When the engine raised
instead of returning, the runner rebuilds the same record from the feed
(`RunRecorder.outcome`), so every path to a manifest goes through this one type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Every reason a run's engine stops for, as ``run.finished`` and the manifest write it.
BUDGET_LIMITS = (
    "max_total_rollouts",
    "max_train_rollouts",
    "max_heldout_rollouts",
    "max_cost_usd",
    "max_tokens",
    "max_wall_seconds",
    "max_proposals",
)
STOP_RULES = ("no_improvement", "score_threshold", "no_new_proposals", "proposer_failures")
# what a caller's `Control.stop_requested()` answers (the runner's stop file, signals,
# and the service's cancel and pause)
EXTERNAL_STOPS = ("stop_file", "interrupted", "terminated", "cancelled", "paused")
STOPPED_BY = (*BUDGET_LIMITS, *STOP_RULES, *EXTERNAL_STOPS)

# the keys of a run.finished event, in the order the feed has always had them
FINISHED_KEYS = (
    "stopped_by",
    "best_candidate_id",
    "best_val_mean",
    "best_val_count",
    "seed_val_mean",
    "seed_heldout_mean",
    "best_heldout_mean",
    "num_candidates",
    "iterations",
    "budget",
)


@dataclass(frozen=True)
class RunOutcome:
    stopped_by: str
    best_candidate_id: str
    best_texts: dict[str, str]
    best_val_mean: float
    best_val_count: int
    seed_val_mean: float
    seed_val_count: int
    seed_heldout_mean: float | None
    best_heldout_mean: float | None
    heldout_count: int
    num_candidates: int
    iterations: int
    # {"rollouts": {"train", "val", "heldout", "total"}, "proposals", "tokens",
    #  "cost_usd", "cost_known"}
    budget: dict[str, Any] = field(default_factory=dict)
    # the proposer's last failure when stopped_by is "proposer_failures"
    error: str | None = None

    def finished_event(self) -> dict[str, Any]:
        """The data of the ``run.finished`` event (docs/events.md)."""
        data = {key: getattr(self, key) for key in FINISHED_KEYS}
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_finished_event(
        cls,
        data: Mapping[str, Any],
        *,
        best_texts: Mapping[str, str],
        seed_val_count: int,
        heldout_count: int,
    ) -> RunOutcome:
        """The record again from its event, plus the three facts the event leaves to
        other events (the best texts, the seed's validation size, the heldout size)."""
        return cls(
            **{key: data[key] for key in FINISHED_KEYS},
            best_texts=dict(best_texts),
            seed_val_count=seed_val_count,
            heldout_count=heldout_count,
            error=data.get("error"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON data."""
        return {
            **self.finished_event(),
            "best_texts": dict(self.best_texts),
            "seed_val_count": self.seed_val_count,
            "heldout_count": self.heldout_count,
            "error": self.error,
        }
