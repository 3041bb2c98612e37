"""What the ledgers say about each run, gathered in a few grouped DuckDB scans.

Status and invariants need sums and counts over up to millions of rollout rows, so
each ledger is scanned once for all runs (grouped by run_id) instead of once per run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from gepa_cli.workspace.views import Workspace

# Rollouts whose live call raised (the evaluator records them as failed with the
# error class in front): the cache counted a miss but neither a write nor not_stored.
TRANSPORT_ERRORS = ("ContainerError:", "ContainerContractError:")

# Event types whose payload the status needs; other payloads are never materialized.
PAYLOAD_TYPES = ("run.started", "candidate.accepted", "merge.accepted", "heldout.completed")


@dataclass
class UsageSum:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True

    def add(self, calls: int, prompt: Any, completion: Any, cost: Any, known: Any) -> None:
        self.calls += calls
        self.prompt_tokens += int(prompt or 0)
        self.completion_tokens += int(completion or 0)
        self.cost_usd += float(cost or 0.0)
        self.cost_known = self.cost_known and known is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "cost_known": self.cost_known,
        }


@dataclass
class RunFacts:
    rollouts: int = 0
    rollouts_by_split: Counter[str] = field(default_factory=Counter)
    rollouts_by_status: Counter[str] = field(default_factory=Counter)
    rollout_actions: Counter[str] = field(default_factory=Counter)  # hit/write/live/none
    transport_failures: int = 0
    rollout_usage: UsageSum = field(default_factory=UsageSum)
    live_cost_usd: float = 0.0
    proposals: int = 0
    proposal_actions: Counter[str] = field(default_factory=Counter)
    proposal_outcomes: Counter[str] = field(default_factory=Counter)
    proposal_usage: UsageSum = field(default_factory=UsageSum)
    proposal_cost_usd: float = 0.0
    candidates: dict[str, int | None] = field(default_factory=dict)  # id -> val_count
    candidate_rows: int = 0
    events: int = 0
    events_by_type: Counter[str] = field(default_factory=Counter)
    seq_min: int | None = None
    seq_max: int | None = None
    seq_distinct: int = 0
    val_ids: int | None = None
    accepted: list[tuple[int, str]] = field(default_factory=list)  # (seq, candidate_id)
    type_at: dict[int, str] = field(default_factory=dict)  # seq -> type, checkpoints only
    best_heldout_mean: float | None = None
    # validation objective means of the seed and of the run's best candidate (candidates
    # ledger); empty for a task that reports no objectives
    seed_objective_means: dict[str, float] = field(default_factory=dict)
    best_objective_means: dict[str, float] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float:
        return self.rollout_usage.cost_usd + self.proposal_cost_usd

    @property
    def cost_known(self) -> bool:
        return self.rollout_usage.cost_known and self.proposal_usage.cost_known


def gather(ws: Workspace) -> dict[str, RunFacts]:
    facts: dict[str, RunFacts] = defaultdict(RunFacts)
    transport = " OR ".join(f"starts_with(error, '{p}')" for p in TRANSPORT_ERRORS)
    _, rows = ws.query(
        "SELECT run_id, split, status, cache_action, count(*), sum(prompt_tokens), "
        "sum(completion_tokens), sum(cost_usd), bool_and(coalesce(cost_known, true)), "
        f"count(*) FILTER (status = 'failed' AND cache_action = 'live' AND ({transport})) "
        "FROM rollouts GROUP BY ALL"
    )
    for run_id, split, status, action, n, prompt, completion, cost, known, failures in rows:
        f = facts[run_id]
        f.rollouts += n
        f.rollouts_by_split[str(split)] += n
        f.rollouts_by_status[str(status)] += n
        f.rollout_actions[str(action) if action is not None else "none"] += n
        f.transport_failures += failures
        f.rollout_usage.add(n, prompt, completion, cost, known)
        if action != "hit":
            f.live_cost_usd += float(cost or 0.0)

    _, rows = ws.query(
        "SELECT run_id, cache_action, outcome_kind, count(*), sum(prompt_tokens), "
        "sum(completion_tokens), sum(coalesce(cost_usd, usage.cost_usd)), "
        "bool_and(coalesce(cost_known, true)), count(*) FILTER (cache_action IS NOT NULL) "
        "FROM proposals GROUP BY ALL"
    )
    for run_id, action, outcome, n, prompt, completion, cost, known, calls in rows:
        f = facts[run_id]
        f.proposals += n
        f.proposal_actions[str(action) if action is not None else "none"] += n
        f.proposal_outcomes[str(outcome)] += n
        f.proposal_cost_usd += float(cost or 0.0)
        # a call that raised has no cache action and spent nothing recorded
        if calls:
            f.proposal_usage.add(calls, prompt, completion, cost, known)
        if action not in ("hit", None):
            f.live_cost_usd += float(cost or 0.0)

    _, rows = ws.query(
        "SELECT run_id, candidate_id, max(val_count), count(*) FROM candidates GROUP BY ALL"
    )
    for run_id, cid, val_count, n in rows:
        facts[run_id].candidates[str(cid)] = val_count
        facts[run_id].candidate_rows += n

    _gather_objectives(ws, facts)
    _gather_events(ws, facts)
    return facts


def _gather_objectives(ws: Workspace, facts: dict[str, RunFacts]) -> None:
    """Objective means of each run's seed and best candidate, from their fullest row."""
    wanted = sorted(
        f"{run.run_id}/{cid}"
        for run in ws.runs
        for cid in (run.seed_candidate_id, run.best_candidate_id)
        if cid is not None
    )
    _, rows = ws.query(
        "SELECT run_id, candidate_id, bool_or(origin = 'seed'), "
        "arg_max(objective_means, val_count) FROM candidates "
        "WHERE origin = 'seed' OR list_contains(?, run_id || '/' || candidate_id) GROUP BY ALL",
        [wanted],
    )
    runs = {run.run_id: run for run in ws.runs}
    for run_id, cid, is_seed, raw in rows:
        means = orjson.loads(raw) if raw else {}
        if not isinstance(means, dict) or not means:
            continue
        scores = {str(k): float(v) for k, v in means.items() if isinstance(v, int | float)}
        run = runs.get(run_id)
        seed_id = run.seed_candidate_id if run else None
        if cid == seed_id or (seed_id is None and is_seed):
            facts[run_id].seed_objective_means = scores
        if run is not None and cid == run.best_candidate_id:
            facts[run_id].best_objective_means = scores


def _gather_events(ws: Workspace, facts: dict[str, RunFacts]) -> None:
    kinds = ", ".join(f"'{t}'" for t in PAYLOAD_TYPES)
    # one scan of every feed; later lookups read this small table
    ws.query(
        "CREATE OR REPLACE TEMP TABLE _events AS SELECT run_id, seq, type, "
        f"CASE WHEN type IN ({kinds}) THEN data END AS data FROM events"
    )
    _, rows = ws.query(
        "SELECT run_id, type, count(*), min(seq), max(seq) FROM _events GROUP BY ALL"
    )
    for run_id, kind, n, low, high in rows:
        f = facts[run_id]
        f.events += n
        f.events_by_type[str(kind)] += n
        f.seq_min = low if f.seq_min is None else min(f.seq_min, low)
        f.seq_max = high if f.seq_max is None else max(f.seq_max, high)
    _, rows = ws.query("SELECT run_id, count(DISTINCT seq) FROM _events GROUP BY ALL")
    for run_id, distinct in rows:
        facts[run_id].seq_distinct = distinct
    _, rows = ws.query(
        "SELECT run_id, seq, type, json_array_length(data->'val_ids'), "
        "data->>'candidate_id', CAST(data->>'mean' AS DOUBLE), "
        "list_contains(CAST(data->'roles' AS VARCHAR[]), 'best') "
        f"FROM _events WHERE type IN ({kinds}, 'checkpoint') ORDER BY run_id, seq"
    )
    for run_id, seq, kind, val_ids, cid, mean, best_role in rows:
        f = facts[run_id]
        if kind == "run.started":
            f.val_ids = val_ids
        elif kind in ("candidate.accepted", "merge.accepted") and cid is not None:
            f.accepted.append((seq, cid))
        elif kind == "heldout.completed" and best_role:
            f.best_heldout_mean = mean
        elif kind == "checkpoint":
            f.type_at[seq] = kind
