"""What a finished run hands back to its caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gepa_cli.engine.state import EngineState


@dataclass(frozen=True)
class EngineResult:
    best_candidate_id: str
    best_texts: dict[str, str]
    best_val_mean: float
    best_val_count: int
    seed_val_mean: float
    seed_val_count: int
    seed_heldout_mean: float | None
    best_heldout_mean: float | None
    heldout_count: int
    # {"rollouts": {"train", "val", "heldout", "total"}, "proposals", "tokens",
    #  "cost_usd", "cost_known"}
    budget: dict[str, Any]
    stopped_by: str
    num_candidates: int
    iterations: int
    state: EngineState

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data (without the state)."""
        return {
            "best_candidate_id": self.best_candidate_id,
            "best_texts": dict(self.best_texts),
            "best_val_mean": self.best_val_mean,
            "best_val_count": self.best_val_count,
            "seed_val_mean": self.seed_val_mean,
            "seed_val_count": self.seed_val_count,
            "seed_heldout_mean": self.seed_heldout_mean,
            "best_heldout_mean": self.best_heldout_mean,
            "heldout_count": self.heldout_count,
            "budget": self.budget,
            "stopped_by": self.stopped_by,
            "num_candidates": self.num_candidates,
            "iterations": self.iterations,
        }
