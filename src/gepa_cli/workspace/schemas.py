"""Pinned column types of every view, so queries and CI comparisons never drift.

DuckDB is told these types (``read_json(columns=...)``) instead of inferring them from
whatever rows a run happens to hold; nested data that varies by task (outputs,
objectives, event payloads, texts) stays JSON.
"""

from __future__ import annotations

USAGE = (
    "STRUCT(prompt_tokens BIGINT, completion_tokens BIGINT, cost_usd DOUBLE, cost_known BOOLEAN)"
)

EVENTS = {
    "seq": "BIGINT",
    "ts": "VARCHAR",
    "type": "VARCHAR",
    "data": "JSON",
}

ROLLOUTS = {
    "candidate_id": "VARCHAR",
    "example_id": "VARCHAR",
    "split": "VARCHAR",
    "score": "DOUBLE",
    "status": "VARCHAR",
    "feedback": "VARCHAR",
    "output": "JSON",
    "objectives": "JSON",
    "usage": USAGE,
    "error": "VARCHAR",
    "cache_action": "VARCHAR",
    "latency_ms": "DOUBLE",
    "attempts": "BIGINT",
}

PROPOSALS = {
    "proposal_id": "VARCHAR",
    "iteration": "BIGINT",
    "parent_id": "VARCHAR",
    "component": "VARCHAR",
    "prompt": "VARCHAR",
    "raw_output": "VARCHAR",
    "usage": USAGE,
    "cost_usd": "DOUBLE",
    "cache_action": "VARCHAR",
    "new_text": "VARCHAR",
    "outcome": "VARCHAR",
    "candidate_id": "VARCHAR",
}

CANDIDATES = {
    "candidate_id": "VARCHAR",
    "content_hash": "VARCHAR",
    "parents": "VARCHAR[]",
    "origin": "VARCHAR",
    "iteration": "BIGINT",
    "proposal_id": "VARCHAR",
    "texts": "JSON",
    "val_mean": "DOUBLE",
    "val_count": "BIGINT",
    "objective_means": "JSON",
}

FRONTIER_FILE = {
    "frontier_type": "VARCHAR",
    "frontier": "MAP(VARCHAR, VARCHAR[])",
    "best_scores": "MAP(VARCHAR, DOUBLE)",
    "best_candidate_id": "VARCHAR",
    "best_val_mean": "DOUBLE",
}

CACHE_PROFILE_FILE = {
    "namespace": "VARCHAR",
    "mode": "VARCHAR",
    "boundaries": "MAP(VARCHAR, STRUCT(hits BIGINT, misses BIGINT, writes BIGINT, "
    "not_stored BIGINT))",
}

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

VIEW_NAMES = ("runs", "events", "rollouts", "proposals", "candidates", "frontier", "cache")
