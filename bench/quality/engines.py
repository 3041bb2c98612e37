"""The engines of a pair, all in-process on the same task rows and the same proposer.

- `run_reference`: `gepa.optimize` (the pinned reference package) with an adapter whose
  `evaluate` runs the task's rollout and whose `propose_new_texts` runs the proposer;
  all arguments at their defaults except `max_metric_calls = budget` and `seed`.
- `run_ours`: gepa-cli's `GepaEngine` with the settings a `[gepa]` section holding only
  the budget (and a variant's fields) resolves to, `max_train_rollouts = budget`.
- `run_greedy`: no validation at all. Each step evaluates the current text on a
  minibatch, asks the proposer for a child from those records, evaluates the child on
  the same minibatch and keeps it when its sum is strictly higher; the result is the
  last kept text.

Every engine's result is scored on the same heldout rows after the search, outside the
budget (gepa-cli's engine does that itself; the others here). Budgets count every
rollout of the search (train and val); gepa-cli's engine and the greedy loop memoize
(text, example) pairs within a run and charge only the first evaluation, the reference
(`cache_evaluation=False`, its default) charges every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from quality.core import ProposeFn, Rollout, Task

Outcome = dict[str, Any]


def text_digest(text: str) -> str:
    """Names a final text in the results (a rerun must name the same one)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def held_on_validation(
    pairs: Sequence[tuple[Mapping[str, float], Mapping[str, float]]],
) -> dict[str, int]:
    """Of the minibatch-accepted children validated in full ((child's, parent's) scores
    by validation example), how many beat their parent's validation mean too, and on
    how many validation examples in all a child's score differs from its parent's.

    The regime of a pair shows in these: a high share says the minibatch tells the
    truth, a low one that its gains often do not hold; few changed examples say a full
    validation mostly re-measures what the edit did not touch."""

    def mean(scores: Mapping[str, float]) -> float:
        return sum(scores.values()) / len(scores) if scores else 0.0

    return {
        "children": len(pairs),
        "held": sum(mean(child) > mean(parent) for child, parent in pairs),
        "changed": sum(
            sum(child[e] != parent[e] for e in child.keys() & parent.keys())
            for child, parent in pairs
        ),
    }


def ours_settings(budget: int, **gepa: Any) -> Any:
    """The engine settings a `[gepa]` section with only this budget (and ``gepa``)
    resolves to: the project's defaults at the time the bench runs, as `gepa run`
    would use them."""
    from gepa_cli.config.models import GepaSettings
    from gepa_cli.engine import EngineSettings

    section = GepaSettings(max_train_rollouts=budget, **gepa)
    return EngineSettings.from_mapping(section.model_dump())


def default_minibatch(task: Task, budget: int) -> int:
    """The minibatch size our default's schedule gives on this task (the greedy loop's)."""
    size: int = ours_settings(budget).minibatch_for(len(task.val_ids))
    return min(size, len(task.train_ids))


def propose_as_command(propose: ProposeFn, current: str, records: Sequence[Any]) -> Any:
    """The proposer's answer read as gepa-cli reads a command backend's: fenced, then
    parsed by the same parser (so `unchanged` and outer whitespace are judged alike)."""
    from gepa_cli.runtime.proposers.prompt import fence_for, parse_answer

    new_text = propose(current, records)
    fence = fence_for(new_text)
    raw = f"{fence}\n{new_text}\n{fence}\n"
    return parse_answer(raw, current), raw


# --- gepa-cli's engine -----------------------------------------------------------------


def run_ours(task: Task, propose: ProposeFn, budget: int, seed: int, settings: Any) -> Outcome:
    from gepa_cli.engine import (
        EvaluationRequest,
        ExampleResult,
        GepaEngine,
        ProposalRequest,
        ProposalResult,
    )

    class Evaluator:
        async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
            text = request.texts[task.component]
            out = []
            for example_id in request.example_ids:
                r = task.rollout(text, example_id)
                out.append(
                    ExampleResult(
                        example_id=example_id,
                        score=r.score,
                        output=r.output,
                        feedback=r.feedback,
                        objectives=dict(r.objectives),
                        inputs=dict(r.inputs),
                    )
                )
            return out

    class Proposer:
        async def propose(self, request: ProposalRequest) -> ProposalResult:
            records = [
                {
                    "example_id": rec.example_id,
                    "inputs": dict(rec.inputs),
                    "output": rec.output,
                    "score": rec.score,
                    "feedback": rec.feedback,
                }
                for rec in request.records
            ]
            parsed, raw = propose_as_command(propose, request.current_text, records)
            return ProposalResult(parsed.new_text, parsed.rejection, raw_output=raw)

    val_scores: dict[str, dict[str, float]] = {}  # content hash -> example -> score
    hashes: dict[str, str] = {}  # candidate id -> content hash
    parents: dict[str, str] = {}  # child -> its one parent (merges have two: left out)
    texts: dict[str, str] = {}  # candidate id -> its text
    last: dict[str, Any] = {}  # the latest frontier.updated and budget.updated

    class Events:
        """Keeps only what `held_on_validation` needs, from the engine's event feed."""

        def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
            if event_type in ("frontier.updated", "budget.updated", "run.finished"):
                last[event_type] = data
            if event_type == "candidate.registered":
                hashes[data["candidate_id"]] = data["content_hash"]
                texts[data["candidate_id"]] = data["texts"][task.component]
                if len(data.get("parents") or []) == 1:
                    parents[data["candidate_id"]] = data["parents"][0]
            elif event_type == "evaluation.completed" and str(data.get("purpose", "")).startswith(
                "validation"
            ):
                rows = val_scores.setdefault(data["content_hash"], {})
                rows.update({r["example_id"]: r["score"] for r in data["results"]})

    started = time.perf_counter()

    class Clock:
        def elapsed_seconds(self) -> float:
            return time.perf_counter() - started

        def stop_requested(self) -> str | None:
            return None

    engine = GepaEngine(
        settings,
        Evaluator(),
        Proposer(),
        Events(),
        Clock(),
        None,
        train_ids=list(task.train_ids),
        val_ids=list(task.val_ids),
        heldout_ids=list(task.heldout_ids),
        seed_texts={task.component: task.seed_text},
        rng_seed=seed,
    )
    from gepa_cli.errors import ProposerError

    def validated_scores(candidate_id: str) -> dict[str, float] | None:
        rows = val_scores.get(hashes.get(candidate_id, ""), {})
        return rows if len(rows) == len(task.val_ids) else None

    def validated() -> list[tuple[dict[str, float], dict[str, float]]]:
        return [
            (child_rows, parent_rows)
            for child, parent in parents.items()
            if (child_rows := validated_scores(child)) and (parent_rows := validated_scores(parent))
        ]

    try:
        result = asyncio.run(engine.run())
    except ProposerError as exc:
        # the engine ends a run whose proposer fails (or answers `unchanged`) too many
        # times in a row with an error and no heldout; the bench keeps the run, with the
        # best validated candidate so far scored on heldout here, and says why it ended
        seed_rows = validated_scores("c0000") or {}
        outcome = gave_up_outcome(task, exc, last, texts, started)
        outcome["seed_val"] = sum(seed_rows.values()) / max(1, len(seed_rows))
        outcome["held_on_validation"] = held_on_validation(validated())
        return outcome
    wall = time.perf_counter() - started
    rollouts = result.budget["rollouts"]
    return {
        "seed_val": result.seed_val_mean,
        "seed_heldout": result.seed_heldout_mean,
        "best_val": result.best_val_mean,
        "best_heldout": result.best_heldout_mean,
        "evaluations": rollouts["train"] + rollouts["val"],
        "heldout_evaluations": rollouts["heldout"],
        "candidates": result.num_candidates,
        "iterations": result.iterations,
        "proposals": result.budget["proposals"],
        "stopped_by": result.stopped_by,
        "held_on_validation": held_on_validation(validated()),
        "best_text_sha256": text_digest(result.best_texts[task.component]),
        "wall_seconds": wall,
    }


def gave_up_outcome(
    task: Task, error: Exception, last: Mapping[str, Any], texts: Mapping[str, str], started: float
) -> Outcome:
    frontier, budget = last["frontier.updated"], last["budget.updated"]
    best = texts[frontier["best_candidate_id"]]
    rollouts = budget["rollouts"]
    return {
        "seed_val": None,
        "seed_heldout": task.mean(task.seed_text, task.heldout_ids),
        "best_val": frontier["best_val_mean"],
        "best_heldout": task.mean(best, task.heldout_ids),
        "evaluations": rollouts["train"] + rollouts["val"],
        "heldout_evaluations": 2 * len(task.heldout_ids),
        "candidates": len(texts),
        "iterations": budget.get("iteration"),
        "proposals": budget["proposals"],
        "stopped_by": f"proposer_failures: {str(error).splitlines()[0]}",
        "held_on_validation": None,
        "best_text_sha256": text_digest(best),
        "wall_seconds": time.perf_counter() - started,
    }


# --- the reference gepa package --------------------------------------------------------


def run_reference(task: Task, propose: ProposeFn, budget: int, seed: int) -> Outcome:
    import gepa
    from gepa.core.adapter import EvaluationBatch

    component = task.component

    class Adapter:
        """Runs the task's rollout and the pair's proposer, as gepa-cli's runs do."""

        def evaluate(
            self, batch: list[str], candidate: dict[str, str], capture_traces: bool = False
        ) -> EvaluationBatch:
            results = [task.rollout(candidate[component], e) for e in batch]
            return EvaluationBatch(
                outputs=[r.output for r in results],
                scores=[r.score for r in results],
                trajectories=[r.record() for r in results] if capture_traces else None,
                objective_scores=[dict(r.objectives) for r in results],
            )

        def make_reflective_dataset(
            self,
            candidate: dict[str, str],
            eval_batch: EvaluationBatch,
            components_to_update: list[str],
        ) -> dict[str, list[dict[str, Any]]]:
            records = list(eval_batch.trajectories or [])
            return {c: records for c in components_to_update}

        def propose_new_texts(
            self,
            candidate: dict[str, str],
            reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
            components_to_update: list[str],
        ) -> dict[str, str]:
            calls.append(len(components_to_update))
            return {c: propose(candidate[c], reflective_dataset[c]) for c in components_to_update}

    class Quiet:
        def log(self, message: str) -> None:
            pass

    calls: list[int] = []
    started = time.perf_counter()
    result = gepa.optimize(
        seed_candidate={component: task.seed_text},
        trainset=list(task.train_ids),
        valset=list(task.val_ids),
        adapter=Adapter(),
        max_metric_calls=budget,
        logger=Quiet(),
        seed=seed,
    )
    subscores = result.val_subscores
    # every candidate but the seed (and merges, off by default) is a child accepted on
    # its minibatch and then validated in full
    validated = [
        (subscores[i], subscores[p[0]])
        for i, p in enumerate(result.parents)
        if i > 0 and len(p) == 1 and p[0] is not None
    ]
    best = result.best_candidate
    best_text = best[component] if isinstance(best, dict) else str(best)
    seed_heldout = task.mean(task.seed_text, task.heldout_ids)
    best_heldout = task.mean(best_text, task.heldout_ids)
    wall = time.perf_counter() - started
    return {
        "seed_val": result.val_aggregate_scores[0],
        "seed_heldout": seed_heldout,
        "best_val": result.val_aggregate_scores[result.best_idx],
        "best_heldout": best_heldout,
        "evaluations": result.total_metric_calls,
        "heldout_evaluations": 2 * len(task.heldout_ids),
        "candidates": result.num_candidates,
        "iterations": None,
        "proposals": sum(calls),
        "stopped_by": "max_metric_calls",
        "held_on_validation": held_on_validation(validated),
        "best_text_sha256": text_digest(best_text),
        "wall_seconds": wall,
    }


# --- the greedy loop -------------------------------------------------------------------


def run_greedy(
    task: Task,
    propose: ProposeFn,
    budget: int,
    seed: int,
    *,
    minibatch_size: int,
    settings: Any,
) -> Outcome:
    """Accept on minibatch improvement, never validate. ``settings`` (our default's)
    gives the perfect-score skip and the limit on steps in a row that spend nothing, so
    the loop stops where gepa-cli's engine would stop for the same reasons."""
    from gepa_cli.engine.sampler import EpochShuffledSampler

    started = time.perf_counter()
    rng = random.Random(seed)
    sampler = EpochShuffledSampler(list(task.train_ids), minibatch_size)
    memo: dict[tuple[str, str], Rollout] = {}
    spent = 0

    def run(text: str, ids: Sequence[str]) -> list[Rollout]:
        nonlocal spent
        key = text_digest(text)
        out = []
        for e in ids:
            if (key, e) not in memo:
                memo[key, e] = task.rollout(text, e)
                spent += 1
            out.append(memo[key, e])
        return out

    current = task.seed_text
    steps = accepted = proposals = noops = 0
    stopped_by = "budget"
    while True:
        batch = sampler.next_minibatch(rng)
        # the step's worst case is reserved before any of it runs: the budget is a limit
        worst = sum((text_digest(current), e) not in memo for e in batch) + len(batch)
        if spent + worst > budget:
            break
        before = spent
        steps += 1
        parent = run(current, batch)
        if not (
            settings.skip_perfect_score and all(r.score >= settings.perfect_score for r in parent)
        ):
            proposals += 1
            parsed, _raw = propose_as_command(propose, current, [r.record() for r in parent])
            if parsed.new_text is not None:
                child = run(parsed.new_text, batch)
                if sum(r.score for r in child) > sum(r.score for r in parent):
                    current = parsed.new_text
                    accepted += 1
        noops = noops + 1 if spent == before else 0
        if noops >= settings.max_consecutive_noop_iterations:
            stopped_by = "no_progress"
            break
    seed_heldout = task.mean(task.seed_text, task.heldout_ids)
    final_heldout = task.mean(current, task.heldout_ids)
    wall = time.perf_counter() - started
    return {
        "seed_val": None,
        "seed_heldout": seed_heldout,
        "best_val": None,
        "best_heldout": final_heldout,
        "evaluations": spent,
        "heldout_evaluations": 2 * len(task.heldout_ids),
        "candidates": accepted + 1,
        "iterations": steps,
        "proposals": proposals,
        "stopped_by": stopped_by,
        "held_on_validation": None,
        "best_text_sha256": text_digest(current),
        "wall_seconds": wall,
    }
