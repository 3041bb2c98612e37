"""Pinned column types of every view, derived from the run-directory schema.

DuckDB is told these types (``read_json(columns=...)``) instead of inferring them from
whatever rows a run happens to hold. They are computed from the models of
`gepa_cli.artifacts.schema`, so a field added to a row is a column here too. Nested data
that varies by task (outputs, objectives, event payloads, texts) stays JSON in the
ledger views; the frontier and cache profile documents keep their maps as MAPs, which
their views unnest.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel

from gepa_cli.artifacts.schema import (
    CacheProfileDoc,
    CandidateRow,
    EventLine,
    FrontierDoc,
    ProposalRow,
    RewardRow,
    RolloutRow,
)

SCALARS = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN"}


def duckdb_type(annotation: Any, *, maps: bool) -> str:
    """The DuckDB type of a model field's annotation; ``maps``: dicts as MAP, not JSON."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1:  # X | None: nullable anyway
            return duckdb_type(present[0], maps=maps)
        return "JSON"
    if annotation in SCALARS:
        return SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = ", ".join(
            f"{name} {duckdb_type(info.annotation, maps=maps)}"
            for name, info in annotation.model_fields.items()
        )
        return f"STRUCT({fields})"
    if origin is list and args and args[0] in SCALARS:
        return f"{SCALARS[args[0]]}[]"
    if origin is dict and maps and args and args[0] is str:
        return f"MAP(VARCHAR, {duckdb_type(args[1], maps=maps)})"
    return "JSON"


def columns(
    model: type[BaseModel], *, maps: bool = False, exclude: tuple[str, ...] = ()
) -> dict[str, str]:
    """``{column: DuckDB type}`` for the fields of ``model``, in field order."""
    return {
        info.alias or name: duckdb_type(info.annotation, maps=maps)
        for name, info in model.model_fields.items()
        if name not in exclude
    }


# the run id of a ledger row is the name of its directory, never a column of the file
EVENTS = columns(EventLine, exclude=("run_id",))
ROLLOUTS = columns(RolloutRow)
PROPOSALS = columns(ProposalRow)
CANDIDATES = columns(CandidateRow)
REWARDS = columns(RewardRow)  # online sessions only
FRONTIER_FILE = columns(FrontierDoc, maps=True)
CACHE_PROFILE_FILE = columns(CacheProfileDoc, maps=True)

# The `runs` table is built from the registry, the manifests and the locks (liveness
# needs a process check, which SQL cannot do), so it is a table with these columns.
RUNS = {
    "run_id": "VARCHAR",
    "run_dir": "VARCHAR",
    "state": "VARCHAR",
    "lock": "VARCHAR",
    "registry_state": "VARCHAR",
    "manifest_state": "VARCHAR",
    "config_path": "VARCHAR",
    "started_at": "VARCHAR",
    "finished_at": "VARCHAR",
    "stopped_by": "VARCHAR",
    "best_candidate_id": "VARCHAR",
    "best_val_mean": "DOUBLE",
    "best_val_count": "BIGINT",
    "best_heldout_mean": "DOUBLE",
    "seed_val_mean": "DOUBLE",
    "seed_heldout_mean": "DOUBLE",
    "rollouts_total": "BIGINT",
    "proposals": "BIGINT",
    "tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "cost_known": "BOOLEAN",
    "spent_usd": "DOUBLE",
    "num_candidates": "BIGINT",
    "iterations": "BIGINT",
    "cache_mode": "VARCHAR",
    "cache_namespace": "VARCHAR",
    "proposer_backend": "VARCHAR",
    "manifest": "JSON",
}

VIEW_NAMES = (
    "runs",
    "events",
    "rollouts",
    "rewards",
    "proposals",
    "candidates",
    "frontier",
    "cache",
)
