"""The manifest: what a run produced, built from its outcome record and written last."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gepa_cli.artifacts.manifest import StateHistory
from gepa_cli.artifacts.schema import (
    BestCandidate,
    Budget,
    CacheSettings,
    ErrorInfo,
    FrontierSummary,
    ListenerError,
    Manifest,
    SeedCandidate,
)
from gepa_cli.config import GepaConfig
from gepa_cli.engine import RunOutcome
from gepa_cli.errors import GepaCliError
from gepa_cli.runner.feed import SEED_ID
from gepa_cli.runner.recorder import Spend

# where the price of each boundary's calls is set
PRICE_SECTIONS = {
    "container.rollout": "[policy.prices]",
    "proposer.openai_chat": "[proposer.prices]",
}


def unknown_cost_note(unpriced: Sequence[str]) -> str:
    """One line: whose calls have no price, and where to set one."""
    parts = [
        f"{name} (set {PRICE_SECTIONS[name]})" if name in PRICE_SECTIONS else name
        for name in unpriced
    ]
    return "cost unknown: no price for the calls of " + ", ".join(parts or ["some calls"])


def build_manifest(
    *,
    run_id: str,
    config: GepaConfig,
    config_path: str | None,
    started_at: str,
    finished_at: str,
    history: StateHistory,
    stopped_by: str | None,
    outcome: RunOutcome | None,
    spend: Spend,
    budget: dict[str, Any] | None,
    error: GepaCliError | None = None,
    listener_errors: Sequence[ListenerError] = (),
    frontier: FrontierSummary | None = None,
) -> Manifest:
    """``outcome`` is None when the engine never validated the seed (the run failed
    before it started); ``budget`` is the last one the feed reported."""
    if outcome is not None and outcome.budget:
        budget = outcome.budget
    cost_known = spend.cost_known
    return Manifest(
        run_id=run_id,
        config_path=config_path,
        state=history.current or "unknown",
        stopped_by=stopped_by,
        started_at=started_at,
        finished_at=finished_at,
        best_candidate=None
        if outcome is None
        else BestCandidate(
            id=outcome.best_candidate_id,
            texts=dict(outcome.best_texts),
            val_mean=outcome.best_val_mean,
            val_count=outcome.best_val_count,
            heldout_mean=outcome.best_heldout_mean,
        ),
        seed_candidate=None
        if outcome is None
        else SeedCandidate(
            id=SEED_ID,
            val_mean=outcome.seed_val_mean,
            val_count=outcome.seed_val_count,
            heldout_mean=outcome.seed_heldout_mean,
        ),
        heldout_count=outcome.heldout_count if outcome is not None else None,
        budget=Budget.model_validate(budget) if budget else None,
        usage={name: totals.model_copy() for name, totals in spend.by_boundary.items()},
        cost_usd=spend.cost_usd,
        cost_known=cost_known,
        cost_note=None if cost_known else unknown_cost_note(spend.unpriced),
        spent_usd=spend.live_usd,
        spent_known=spend.live_known,
        num_candidates=outcome.num_candidates if outcome is not None else None,
        iterations=outcome.iterations if outcome is not None else None,
        frontier=frontier,
        cache=CacheSettings(
            mode=config.cache.mode, namespace=config.cache.namespace, path=str(config.cache.path)
        ),
        error=ErrorInfo.model_validate(error.to_dict()) if error is not None else None,
        listener_errors=list(listener_errors),
        state_history=list(history.changes),
    )
