"""`workspace_status`: per run its state, scores, ledger breakdowns and invariants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gepa_cli.workspace.discover import RunFiles, read_runs
from gepa_cli.workspace.facts import RunFacts, gather
from gepa_cli.workspace.invariants import Invariant, check_run
from gepa_cli.workspace.views import Workspace, run_state


@dataclass
class RunStatus:
    run_id: str
    path: str
    state: str  # running | finished | stopped | failed | crashed | unknown | incomplete
    lock: str  # absent | alive | stale | unknown
    pid: int | None
    stopped_by: str | None
    best_candidate_id: str | None
    best_val_mean: float | None
    best_heldout_mean: float | None
    seed_val_mean: float | None
    seed_heldout_mean: float | None
    # per objective, the validation means of the seed and the best candidate ({} if none)
    seed_objective_means: dict[str, float]
    best_objective_means: dict[str, float]
    rollouts_by_status: dict[str, int]
    rollouts_by_split: dict[str, int]
    events_by_type: dict[str, int]
    cache: dict[str, dict[str, int]]  # boundary -> profile counts + ledger actions
    usage: dict[str, dict[str, Any]]  # boundary -> calls, tokens, cost (from the ledgers)
    cost_usd: float
    spent_usd: float
    proposals: int
    candidates: int
    # False when some call had no price: cost_usd is then only the priced part
    cost_known: bool = True
    invariants: list[Invariant] = field(default_factory=list)

    @property
    def broken(self) -> list[Invariant]:
        return [i for i in self.invariants if i.outcome == "broken"]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "invariants"}
        out["invariants"] = [i.to_dict() for i in self.invariants]
        out["ok"] = not self.broken
        return out


@dataclass
class WorkspaceStatus:
    path: str
    runs: list[RunStatus]

    @property
    def ok(self) -> bool:
        return all(not run.broken for run in self.runs)

    @property
    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.state] = counts.get(run.state, 0) + 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "states": self.states,
            "broken": [
                {"run_id": run.run_id, **inv.to_dict()} for run in self.runs for inv in run.broken
            ],
            "runs": [run.to_dict() for run in self.runs],
        }


def _cache(run: RunFiles, facts: RunFacts, backend: str | None) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if run.cache_profile is not None:
        for boundary, counts in run.cache_profile.boundaries.items():
            out[boundary] = counts.dump()
    ledgers = (
        ("container.rollout", facts.rollout_actions),
        (f"proposer.{backend or 'unknown'}", facts.proposal_actions),
    )
    for boundary, actions in ledgers:
        if sum(actions.values()):
            entry = out.setdefault(boundary, {})
            for action in ("hit", "write", "live", "none"):
                entry[f"ledger_{action}"] = actions.get(action, 0)
    return out


def run_status(run: RunFiles, facts: RunFacts) -> RunStatus:
    state = run_state(run)
    manifest, frontier = run.manifest, run.frontier
    best = manifest.best_candidate if manifest else None
    seed = manifest.seed_candidate if manifest else None
    backend = run.config.proposer_backend if run.config else None
    usage = {"container.rollout": facts.rollout_usage.to_dict()}
    if facts.proposal_usage.calls:
        usage[f"proposer.{backend or 'unknown'}"] = facts.proposal_usage.to_dict()
    return RunStatus(
        run_id=run.run_id,
        path=str(run.path),
        state=state,
        lock=run.lock,
        pid=run.lock_info.pid if run.lock_info else None,
        stopped_by=manifest.stopped_by if manifest else None,
        best_candidate_id=run.best_candidate_id,
        best_val_mean=best.val_mean if best else frontier.best_val_mean if frontier else None,
        best_heldout_mean=best.heldout_mean if best else facts.best_heldout_mean,
        seed_val_mean=seed.val_mean if seed else None,
        seed_heldout_mean=seed.heldout_mean if seed else None,
        seed_objective_means=facts.seed_objective_means,
        best_objective_means=facts.best_objective_means,
        rollouts_by_status=dict(sorted(facts.rollouts_by_status.items())),
        rollouts_by_split=dict(sorted(facts.rollouts_by_split.items())),
        events_by_type=dict(sorted(facts.events_by_type.items())),
        cache=_cache(run, facts, backend),
        usage=usage,
        cost_usd=facts.cost_usd,
        spent_usd=manifest.spent_usd if manifest else facts.live_cost_usd,
        proposals=facts.proposals,
        candidates=len(facts.candidates),
        cost_known=facts.cost_known,
        invariants=check_run(run, facts, state),
    )


def workspace_status(path: str | Path) -> WorkspaceStatus:
    """Status of every run under ``path`` (a runs dir, one run dir, or a glob of either)."""
    runs = read_runs(path)
    with Workspace(runs) as ws:
        facts = gather(ws)
    return WorkspaceStatus(
        path=str(path), runs=[run_status(run, facts.get(run.run_id, RunFacts())) for run in runs]
    )
