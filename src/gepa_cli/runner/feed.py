"""What a run's feed has said so far, kept for the rows and the outcome it implies.

The recorder folds every event it writes into a `FeedIndex`; a resumed run first folds
the feed it continues, so its candidate rows and its outcome know the candidates
registered before the interruption.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gepa_cli.artifacts import iter_jsonl
from gepa_cli.artifacts.schema import FrontierDoc, FrontierMember, FrontierSummary
from gepa_cli.engine import RunOutcome
from gepa_cli.errors import ResumeError

SEED_ID = "c0000"


class FeedIndex:
    def __init__(self) -> None:
        self.registered: dict[str, dict[str, Any]] = {}
        self.validated: dict[str, dict[str, Any]] = {}
        self.frontier: FrontierDoc | None = None
        self.heldout_means: dict[str, float] = {}
        self.heldout_count: int | None = None
        self.iterations = 0
        self.finished: dict[str, Any] | None = None
        # the last budget.updated (or run.finished) budget, without iteration and limits
        self.budget: dict[str, Any] | None = None

    def fold(self, event_type: str, data: Mapping[str, Any]) -> None:
        if event_type == "run.started":
            self.heldout_count = len(data.get("heldout_ids") or [])
        elif event_type == "candidate.registered":
            self.registered[str(data["candidate_id"])] = dict(data)
        elif event_type == "candidate.validated":
            self.validated[str(data["candidate_id"])] = dict(data)
        elif event_type == "iteration.started":
            self.iterations = max(self.iterations, int(data.get("iteration", 0)))
        elif event_type == "frontier.updated":
            self.frontier = FrontierDoc.model_validate(data)
        elif event_type == "heldout.completed":
            self.heldout_means[str(data["candidate_id"])] = float(data["mean"])
        elif event_type == "budget.updated":
            self.budget = {k: v for k, v in data.items() if k not in ("iteration", "limits")}
        elif event_type == "run.finished":
            self.finished = dict(data)
            if isinstance(data.get("budget"), Mapping):
                self.budget = dict(data["budget"])

    def fold_file(self, path: Path) -> None:
        """Fold a feed already on disk (the part a resumed run continues)."""
        for _, event in iter_jsonl(path, error=ResumeError):
            self.fold(str(event.get("type")), event.get("data") or {})

    def outcome(self, stopped_by: str) -> RunOutcome | None:
        """The outcome record as the feed tells it: ``run.finished`` when the engine got
        there, else the best of the last frontier (a run that failed midway; ``stopped_by``
        says why). None when not even the seed was validated."""
        seed = self.validated.get(SEED_ID, {})
        heldout_count = self.heldout_count or 0
        if self.finished is not None:
            best_id = str(self.finished["best_candidate_id"])
            return RunOutcome.from_finished_event(
                self.finished,
                best_texts=self.registered.get(best_id, {}).get("texts") or {},
                seed_val_count=int(seed.get("val_count", 0)),
                heldout_count=heldout_count,
            )
        if self.frontier is None:
            return None
        best_id = self.frontier.best_candidate_id
        best = self.validated.get(best_id, {})
        return RunOutcome(
            stopped_by=stopped_by,
            best_candidate_id=best_id,
            best_texts=dict(self.registered.get(best_id, {}).get("texts") or {}),
            best_val_mean=float(best.get("val_mean", self.frontier.best_val_mean)),
            best_val_count=int(best.get("val_count", 0)),
            seed_val_mean=float(seed.get("val_mean", 0.0)),
            seed_val_count=int(seed.get("val_count", 0)),
            seed_heldout_mean=self.heldout_means.get(SEED_ID),
            best_heldout_mean=self.heldout_means.get(best_id),
            heldout_count=heldout_count,
            num_candidates=len(self.registered),
            iterations=self.iterations,
            budget=dict(self.budget or {}),
        )

    def frontier_summary(self) -> FrontierSummary | None:
        """The last frontier's members with their validation, objective and heldout
        scores (heldout only for those the run evaluated there)."""
        if self.frontier is None:
            return None
        fronts: dict[str, int] = {}
        for ids in self.frontier.frontier.values():
            for cid in ids:
                fronts[cid] = fronts.get(cid, 0) + 1
        members = []
        for cid, count in fronts.items():
            validated = self.validated.get(cid, {})
            members.append(
                FrontierMember(
                    candidate_id=cid,
                    val_mean=validated.get("val_mean"),
                    objective_means=dict(validated.get("objective_means") or {}),
                    heldout_mean=self.heldout_means.get(cid),
                    fronts=count,
                )
            )
        members.sort(key=lambda m: (-(m.val_mean or 0.0), m.candidate_id))
        return FrontierSummary(frontier_type=self.frontier.frontier_type, members=members)
