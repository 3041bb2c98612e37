"""Synthetic run directories in the exact shapes the runner writes (tests and bench).

The writer goes through the artifacts helpers (RunDirectory, ledgers, EventWriter,
write_manifest, RunRegistry), keeps every invariant `workspace status` checks, and is
deterministic for a seed, so a test can break one invariant on purpose and see it named.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gepa_cli.artifacts import EventWriter, RunDirectory, RunRegistry, StateHistory
from gepa_cli.artifacts.manifest import write_manifest
from gepa_cli.artifacts.schema import (
    CHECKPOINT_FORMAT,
    CacheProfileDoc,
    CandidateRow,
    CheckpointDoc,
    FrontierDoc,
    Manifest,
    ResolvedConfigDoc,
    RunnerState,
)
from gepa_cli.engine import Usage
from gepa_cli.runner.recorder import Spend

SyntheticState = Literal["finished", "stopped", "failed", "running"]
PROPOSER = "proposer.openai_chat"
ROLLOUT = "container.rollout"


@dataclass
class SyntheticSpec:
    run_id: str
    state: SyntheticState = "finished"
    iterations: int = 6
    # when set, iterate until about this many rollout rows (iterations is then ignored)
    target_rollouts: int | None = None
    n_train: int = 20
    n_val: int = 8
    n_heldout: int = 4
    minibatch: int = 3
    seed: int = 0
    feedback: str = "expected the label of the request; the answer named another intent"


class _Run:
    def __init__(self, runs_dir: Path, spec: SyntheticSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.rd = RunDirectory.for_run(runs_dir, spec.run_id)
        self.rd.create()
        self.ledgers = self.rd.open_ledgers()
        self.events = EventWriter(self.ledgers.events, spec.run_id)
        self.train = [f"t{i:04d}" for i in range(spec.n_train)]
        self.val = [f"v{i:04d}" for i in range(spec.n_val)]
        self.heldout = [f"h{i:04d}" for i in range(spec.n_heldout)]
        self.rollouts = {"train": 0, "val": 0, "heldout": 0, "total": 0}
        self.tokens = 0
        self.cost = 0.0
        self.spend = Spend()
        self.proposals = 0
        self.profile: dict[str, dict[str, int]] = {}
        self.quality: dict[str, float] = {}
        self.val_scores: dict[str, dict[str, float]] = {}
        self.checkpoints = 0

    # -- one dispatched rollout / proposer call ------------------------------------
    def _count(self, boundary: str, action: str, transport_failure: bool = False) -> None:
        counts = self.profile.setdefault(
            boundary, {"hits": 0, "misses": 0, "writes": 0, "not_stored": 0}
        )
        if action == "hit":
            counts["hits"] += 1
            return
        counts["misses"] += 1
        if action == "write":
            counts["writes"] += 1
        elif not transport_failure:
            counts["not_stored"] += 1

    def _use(self, boundary: str, usage: dict[str, Any], action: str) -> None:
        # the runner's own accounting, so synthetic manifests add up the way real ones do
        self.spend.add(boundary, Usage.from_dict(usage), live=action != "hit")
        self.tokens += usage["prompt_tokens"] + usage["completion_tokens"]
        self.cost += usage["cost_usd"]

    def rollout(self, cid: str, example: str, split: str) -> float:
        roll = self.rng.random()
        action = "hit" if roll < 0.55 else "write" if roll < 0.95 else "live"
        failed = action == "live" and self.rng.random() < 0.5
        score = 0.0 if failed else float(self.rng.random() < self.quality[cid])
        usage = {
            "prompt_tokens": 120,
            "completion_tokens": 8,
            "cost_usd": 0.00013,
            "cost_known": True,
        }
        self.ledgers.rollouts.append(
            {
                "candidate_id": cid,
                "example_id": example,
                "split": split,
                "score": score,
                "status": "failed" if failed else "completed",
                "feedback": None if failed else self.spec.feedback,
                "output": None if failed else {"intent": f"label_{self.rng.randrange(77)}"},
                "objectives": {},
                "usage": usage,
                "error": "ContainerError: POST /rollout timed out after 3 attempts"
                if failed
                else None,
                "cache_action": action,
                "latency_ms": round(self.rng.uniform(5, 900), 3),
                "attempts": 3 if failed else 1,
            }
        )
        self._count(ROLLOUT, action, transport_failure=failed)
        self._use(ROLLOUT, usage, action)
        self.rollouts[split] += 1
        self.rollouts["total"] += 1
        return score

    def evaluate(self, cid: str, ids: list[str], split: str, purpose: str, it: int) -> float:
        scores = {e: self.rollout(cid, e, split) for e in ids}
        results: list[dict[str, Any]] = [
            {
                "example_id": e,
                "memo_hit": False,
                "score": scores[e],
                "status": "completed",
            }
            for e in ids
        ]
        mean = sum(scores.values()) / len(scores)
        self.events.emit(
            "evaluation.completed",
            {
                "eval_id": cid,
                "role": split,
                "purpose": purpose,
                "iteration": it,
                "results": results,
                "mean": mean,
                "rollouts": len(ids),
                "memo_hits": 0,
            },
        )
        if purpose == "validation":
            self.val_scores[cid] = scores
        return mean

    # -- candidates, frontier, checkpoints -------------------------------------------
    def register(self, cid: str, parent: str | None, it: int, proposal: str | None) -> None:
        texts = {"system_prompt": f"Classify the banking request. Variant {cid}."}
        data = {
            "candidate_id": cid,
            "content_hash": hashlib.sha256(texts["system_prompt"].encode()).hexdigest()[:16],
            "parents": [parent] if parent else [],
            "origin": "reflection" if parent else "seed",
            "iteration": it,
            "proposal_id": proposal,
            "texts": texts,
        }
        self.events.emit("candidate.registered", data)
        mean = self.evaluate(cid, self.val, "val", "validation", it)
        validated = {
            "candidate_id": cid,
            "val_mean": mean,
            "val_count": len(self.val),
            "objective_means": {},
        }
        self.events.emit("candidate.validated", validated)
        row = CandidateRow.model_validate({**data, **validated})
        self.ledgers.candidates.append(row.dump())
        self.events.emit("frontier.updated", self.frontier())

    def best(self) -> str:
        return max(self.val_scores, key=lambda c: (sum(self.val_scores[c].values()), c))

    def frontier(self) -> dict[str, Any]:
        front: dict[str, list[str]] = {}
        best_scores: dict[str, float] = {}
        for example in self.val:
            top = max(s[example] for s in self.val_scores.values())
            best_scores[example] = top
            front[example] = sorted(c for c, s in self.val_scores.items() if s[example] == top)
        best = self.best()
        return {
            "frontier_type": "instance",
            "frontier": front,
            "best_scores": best_scores,
            "best_candidate_id": best,
            "best_val_mean": sum(self.val_scores[best].values()) / len(self.val),
        }

    def checkpoint(self, it: int, *, commit: bool) -> None:
        self.checkpoints += 1
        self.events.emit(
            "checkpoint",
            {
                "checkpoint_index": self.checkpoints,
                "iteration": it,
                "next_event_index": self.events.next_seq + 1,
            },
        )
        if not commit:
            return  # only the last checkpoint's file survives; fsync once, not per iteration
        self.rd.write_document(self.rd.frontier, FrontierDoc.model_validate(self.frontier()))
        offsets = self.ledgers.flush()
        checkpoint = CheckpointDoc(
            format=CHECKPOINT_FORMAT,
            engine={
                "next_event_index": self.events.next_seq,
                "checkpoints_taken": self.checkpoints,
                "state": {"iteration": it},
            },
            ledgers=offsets,
            next_seq=self.events.next_seq,
            runner=RunnerState(run_id=self.spec.run_id, started_at="", spend=self.spend.to_doc()),
        )
        self.rd.write_document(self.rd.checkpoint, checkpoint)

    def propose(self, it: int, parent: str) -> tuple[str, dict[str, Any]]:
        self.proposals += 1
        pid = f"p{self.proposals:04d}"
        action = self.rng.choice(["hit", "write", "write"])
        usage = {
            "prompt_tokens": 900,
            "completion_tokens": 150,
            "cost_usd": 0.0021,
            "cost_known": True,
        }
        self._count(PROPOSER, action)
        self._use(PROPOSER, usage, action)
        text = f"Classify the banking request carefully (iteration {it})."
        row = {
            "proposal_id": pid,
            "iteration": it,
            "parent_id": parent,
            "component": "system_prompt",
            "prompt": f"Improve this prompt: {parent}",
            "raw_output": f"```\n{text}\n```",
            "usage": usage,
            "cost_usd": usage["cost_usd"],
            "cache_action": action,
            "new_text": text,
        }
        self.events.emit(
            "proposal.completed",
            {
                "proposal_id": pid,
                "iteration": it,
                "parent_id": parent,
                "component": "system_prompt",
                "text": text,
                "usage": usage,
            },
        )
        return pid, row

    def iteration(self, it: int, candidates: list[str]) -> None:
        spec = self.spec
        parent = self.rng.choice(candidates)
        batch = self.rng.sample(self.train, spec.minibatch)
        self.events.emit(
            "iteration.started",
            {
                "iteration": it,
                "kind": "reflection",
                "parent_id": parent,
                "minibatch": batch,
                "components": ["system_prompt"],
            },
        )
        pid, row = self.propose(it, parent)
        parent_sum = self.evaluate(parent, batch, "train", "minibatch_parent", it) * len(batch)
        self.quality[pid] = min(1.0, self.quality[parent] + self.rng.uniform(-0.1, 0.2))
        child_sum = self.evaluate(pid, batch, "train", "minibatch_child", it) * len(batch)
        verdict = {
            "iteration": it,
            "proposal_ids": [pid],
            "parent_id": parent,
            "content_hash": pid,
            "parent_sum": parent_sum,
            "child_sum": child_sum,
            "rule": "strict_improvement",
        }
        if child_sum > parent_sum:
            cid = f"c{len(candidates):04d}"
            self.quality[cid] = self.quality.pop(pid)
            self.events.emit("candidate.accepted", {**verdict, "candidate_id": cid})
            row.update(outcome="accepted", candidate_id=cid)
            self.ledgers.proposals.append(row)
            self.register(cid, parent, it, pid)
            candidates.append(cid)
        else:
            self.events.emit("candidate.rejected", verdict)
            row.update(outcome="rejected")
            self.ledgers.proposals.append(row)
        self.events.emit(
            "budget.updated",
            {"iteration": it, **self.budget(), "limits": {"max_total_rollouts": None}},
        )

    def budget(self) -> dict[str, Any]:
        return {
            "rollouts": dict(self.rollouts),
            "proposals": self.proposals,
            "tokens": self.tokens,
            "cost_usd": self.cost,
            "cost_known": True,
        }

    def done(self, it: int) -> bool:
        spec = self.spec
        if spec.target_rollouts is None:
            return it > spec.iterations
        worst = 2 * spec.minibatch + spec.n_val + 2 * spec.n_heldout
        return self.rollouts["total"] + worst > spec.target_rollouts


def write_synthetic_run(runs_dir: Path, spec: SyntheticSpec) -> RunDirectory:
    """Write one run directory; ``state="running"`` leaves it mid-write with this pid's lock.

    A running run ends with rows after its last checkpoint and a half-written last line
    in events.jsonl and rollouts.jsonl, as a reader sees a live run between flushes.
    """
    run = _Run(Path(runs_dir), spec)
    rd = run.rd
    registry = RunRegistry(rd.runs_dir)
    history = StateHistory()
    started = history.enter("running").at
    registry.record(spec.run_id, rd.root, state="running", started_at=started)
    lock = rd.run_lock()
    lock.acquire()
    rd.write_document(
        rd.config_resolved,
        ResolvedConfigDoc(
            config={
                "run": {"run_id": spec.run_id, "output_dir": str(runs_dir), "seed": spec.seed},
                "proposer": {"backend": "openai_chat", "model": "gpt-4.1-mini"},
                "cache": {"mode": "readwrite", "path": ".gepa-cache", "namespace": "synthetic"},
            }
        ),
    )
    run.events.emit(
        "run.started",
        {
            "rng_seed": spec.seed,
            "target_modules": ["system_prompt"],
            "train_ids": run.train,
            "val_ids": run.val,
            "heldout_ids": run.heldout,
            "settings": {},
            "heldout_reserved_rollouts": 2 * spec.n_heldout,
        },
    )
    run.quality["c0000"] = 0.4
    run.register("c0000", None, 0, None)
    candidates = ["c0000"]
    run.checkpoint(0, commit=spec.target_rollouts is None and spec.iterations == 0)
    it = 1
    while not run.done(it):
        run.iteration(it, candidates)
        last = run.done(it + 1)
        run.checkpoint(it, commit=last)
        it += 1
    iterations = it - 1
    if spec.state == "running":
        # work after the last checkpoint, then a line cut off mid-write
        run.events.emit(
            "iteration.started",
            {
                "iteration": it,
                "kind": "reflection",
                "parent_id": "c0000",
                "minibatch": run.train[:1],
                "components": ["system_prompt"],
            },
        )
        run.rollout("c0000", run.train[0], "train")
        run.ledgers.close()
        for path in (rd.events, rd.rollouts):
            with open(path, "ab") as handle:
                handle.write(b'{"candidate_id":"c0000","example_id":"t00')
        return rd
    best = run.best()
    heldout: dict[str, float] = {}
    for cid, roles in (
        (("c0000", ["seed"]), (best, ["best"]))
        if best != "c0000"
        else (("c0000", ["seed", "best"]),)
    ):
        heldout[cid] = run.evaluate(cid, run.heldout, "heldout", "heldout", iterations)
        run.events.emit(
            "heldout.completed",
            {"candidate_id": cid, "roles": roles, "mean": heldout[cid], "count": spec.n_heldout},
        )
    best_mean = sum(run.val_scores[best].values()) / spec.n_val
    seed_mean = sum(run.val_scores["c0000"].values()) / spec.n_val
    stopped_by = {
        "finished": "max_total_rollouts",
        "stopped": "stop_file",
        "failed": "proposer_failures",
    }[spec.state]
    run.events.emit(
        "run.finished",
        {
            "stopped_by": stopped_by,
            "best_candidate_id": best,
            "best_val_mean": best_mean,
            "best_val_count": spec.n_val,
            "seed_val_mean": seed_mean,
            "seed_heldout_mean": heldout["c0000"],
            "best_heldout_mean": heldout[best],
            "num_candidates": len(candidates),
            "iterations": iterations,
            "budget": run.budget(),
        },
    )
    run.ledgers.close()
    rd.write_document(rd.frontier, FrontierDoc.model_validate(run.frontier()))
    profile = CacheProfileDoc.model_validate(
        {
            "schema": 1,
            "namespace": "synthetic",
            "mode": "readwrite",
            "boundaries": run.profile,
            "totals": {
                k: sum(c[k] for c in run.profile.values())
                for k in ("hits", "misses", "writes", "not_stored")
            },
        }
    )
    rd.write_document(rd.cache_profile, profile)
    rd.write_normalized_events()
    finished = history.enter(spec.state).at
    fields: dict[str, Any] = {
        "run_id": spec.run_id,
        "config_path": "synthetic.toml",
        "stopped_by": stopped_by,
        "started_at": started,
        "finished_at": finished,
        "best_candidate": {
            "id": best,
            "texts": {"system_prompt": f"variant {best}"},
            "val_mean": best_mean,
            "val_count": spec.n_val,
            "heldout_mean": heldout[best],
        },
        "seed_candidate": {
            "id": "c0000",
            "val_mean": seed_mean,
            "val_count": spec.n_val,
            "heldout_mean": heldout["c0000"],
        },
        "budget": run.budget(),
        "usage": run.spend.by_boundary,
        "cost_usd": run.cost,
        "cost_known": True,
        "spent_usd": run.spend.live_usd,
        "num_candidates": len(candidates),
        "iterations": iterations,
        "cache": {"mode": "readwrite", "namespace": "synthetic", "path": ".gepa-cache"},
    }
    if spec.state == "failed":
        fields["error"] = {"error_code": "proposer_error", "message": "proposer kept failing"}
    fields.update(state=spec.state, state_history=history.changes)
    write_manifest(rd.root, Manifest.model_validate(fields))
    registry.record(spec.run_id, rd.root, state=spec.state, started_at=started)
    lock.release()
    return rd
