"""The manifest: what a run produced, in one JSON document written last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gepa_cli.config import GepaConfig
from gepa_cli.engine import EngineResult
from gepa_cli.errors import GepaCliError
from gepa_cli.runner.recorder import Spend


def manifest_fields(
    *,
    run_id: str,
    config: GepaConfig,
    config_path: str | None,
    started_at: str,
    finished_at: str,
    state: str,
    stopped_by: str | None,
    result: EngineResult | None,
    spend: Spend,
    budget: Mapping[str, Any] | None,
    error: GepaCliError | None = None,
    finished: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``result`` is the engine's; when the engine raised instead of returning (the
    proposer gave up, a readonly cache missed, a signal) the facts come from the feed
    so far (``finished``: see `RunRecorder.outcome`)."""
    recorded_cost = sum(float(entry["cost_usd"]) for entry in spend.by_boundary.values())
    cost_known = all(bool(entry["cost_known"]) for entry in spend.by_boundary.values())
    fields: dict[str, Any] = {
        "run_id": run_id,
        "config_path": config_path,
        "state": state,
        "stopped_by": stopped_by,
        "started_at": started_at,
        "finished_at": finished_at,
        "best_candidate": None,
        "seed_candidate": None,
        "budget": dict(budget) if budget is not None else None,
        "usage": spend.by_boundary,
        "cost_usd": recorded_cost,
        "cost_known": cost_known,
        "cost_note": None if cost_known else "cost unknown for some calls (no price for the model)",
        "spent_usd": spend.live_usd,
        "num_candidates": None,
        "iterations": None,
        "cache": {
            "mode": config.cache.mode,
            "namespace": config.cache.namespace,
            "path": str(config.cache.path),
        },
        "error": error.to_dict() if error is not None else None,
    }
    if result is not None:
        fields.update(
            best_candidate={
                "id": result.best_candidate_id,
                "texts": dict(result.best_texts),
                "val_mean": result.best_val_mean,
                "val_count": result.best_val_count,
                "heldout_mean": result.best_heldout_mean,
            },
            seed_candidate={
                "id": "c0000",
                "val_mean": result.seed_val_mean,
                "val_count": result.seed_val_count,
                "heldout_mean": result.seed_heldout_mean,
            },
            heldout_count=result.heldout_count,
            budget=result.budget,
            num_candidates=result.num_candidates,
            iterations=result.iterations,
        )
    elif finished is not None:
        fields.update(
            best_candidate={
                "id": finished.get("best_candidate_id"),
                "texts": finished.get("best_texts"),
                "val_mean": finished.get("best_val_mean"),
                "val_count": finished.get("best_val_count"),
                "heldout_mean": finished.get("best_heldout_mean"),
            },
            seed_candidate={
                "id": "c0000",
                "val_mean": finished.get("seed_val_mean"),
                "val_count": finished.get("seed_val_count"),
                "heldout_mean": finished.get("seed_heldout_mean"),
            },
            num_candidates=finished.get("num_candidates"),
            iterations=finished.get("iterations"),
        )
    return fields
