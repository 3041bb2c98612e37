"""Evaluation through the within-run memo, with the budget checked before dispatch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from gepa_cli.engine.budget import BudgetGuard, Work
from gepa_cli.engine.events import EVALUATION_COMPLETED, Emitter
from gepa_cli.engine.state import EngineState, MemoEntry
from gepa_cli.engine.types import (
    EvaluationRequest,
    Evaluator,
    ExampleResult,
    Prefetched,
    RolloutSink,
    Texts,
    Usage,
)
from gepa_cli.errors import ContainerContractError


class BudgetStop(Exception):
    """Work would pass a hard limit; the run ends at the last safe point's totals."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class MemoEvaluator:
    """Evaluates through the run's memo: only (texts, example) pairs never evaluated in
    this run are dispatched, counted and charged. A commit of overlapping iterations
    passes its iteration's ``prefetched`` results: those were dispatched for it (and so
    are charged to it), whatever the memo holds by the time it commits."""

    def __init__(
        self,
        evaluator: Evaluator,
        state: EngineState,
        guard: BudgetGuard,
        emitter: Emitter,
        elapsed: Callable[[], float],
        *,
        rollouts: RolloutSink | None = None,
        prefetched: Prefetched | None = None,
        enforce_budget: bool = True,
    ) -> None:
        self.evaluator = evaluator
        self.state = state
        self.guard = guard
        self.emitter = emitter
        self.elapsed = elapsed
        self.rollouts = rollouts
        self.prefetched = prefetched
        self.enforce_budget = enforce_budget

    def require(self, work: Work) -> None:
        if not self.enforce_budget:
            return  # speculative work: its iteration reserved what it may spend
        limit = self.guard.blocked_by(work, self.elapsed())
        if limit is not None:
            raise BudgetStop(limit)

    def missing(self, digest: str, example_ids: Sequence[str]) -> list[str]:
        rows = self.state.memo.get(digest, {})
        return [e for e in dict.fromkeys(example_ids) if e not in rows]

    async def evaluate(
        self,
        eval_id: str,
        digest: str,
        texts: Texts,
        example_ids: Sequence[str],
        *,
        role: str,
        purpose: str,
        iteration: int,
        capture_traces: bool = False,
    ) -> dict[str, MemoEntry]:
        """Scores of ``texts`` on ``example_ids``."""
        ids = list(dict.fromkeys(example_ids))
        rows = self.state.memo.get(digest, {})
        ready: dict[str, ExampleResult] = {}
        owed: set[str] = set()
        if self.prefetched is not None:
            ready = self.prefetched.take(digest, ids)
            owed = {e for e in ids if self.prefetched.owes(digest, e)}
        charged = [e for e in ids if e in ready or e in owed or e not in rows]
        fresh = [e for e in charged if e not in ready]
        spent = Usage()
        if charged:
            heldout = role == "heldout"
            self.require(
                Work(
                    optimization_rollouts=0 if heldout else len(charged),
                    heldout_rollouts=len(charged) if heldout else 0,
                )
            )
            got: dict[str, ExampleResult] = dict(ready)
            if fresh:
                request = EvaluationRequest(eval_id, dict(texts), fresh, role, capture_traces)
                results = await self.evaluator.evaluate(request)
                if [r.example_id for r in results] != fresh:
                    raise ContainerContractError(
                        f"evaluator answered {len(results)} results for {eval_id} on "
                        f"{len(fresh)} {role} examples, not one per requested id in order",
                        hint="the evaluator must return results in request order",
                    )
                got.update((r.example_id, r) for r in results)
            ordered = [got[e] for e in charged]
            # a new dict, never an update in place: speculative runs share the rows
            rows = dict(rows)
            for result in ordered:
                if not math.isfinite(result.score):
                    raise ContainerContractError(
                        f"rollout of {eval_id} on {result.example_id} returned a non-finite "
                        f"score ({result.score})",
                        hint="the reward must be a finite number",
                    )
                self.state.ledger.record_rollout(role, result.usage)
                spent = spent + result.usage
                # the first result of a pair stays: a later one (overlapping iterations
                # that fetched it twice) is charged but never changes a decision
                rows.setdefault(result.example_id, _entry(result))
                if result.inputs and result.example_id not in self.state.inputs:
                    self.state.inputs[result.example_id] = dict(result.inputs)
            self.state.memo[digest] = rows
            if self.rollouts is not None:
                self.rollouts.record_rollouts(
                    EvaluationRequest(eval_id, dict(texts), charged, role, capture_traces),
                    ordered,
                )
        found = {e: rows[e] for e in ids}
        self.emitter.emit(
            EVALUATION_COMPLETED,
            {
                "eval_id": eval_id,
                "content_hash": digest,
                "role": role,
                "purpose": purpose,
                "iteration": iteration,
                "results": [_result_row(e, found[e], e not in charged) for e in sorted(ids)],
                "mean": sum(r.score for r in found.values()) / len(found) if found else 0.0,
                "rollouts": len(charged),
                "memo_hits": len(ids) - len(charged),
                "usage": spent.to_dict(),
            },
        )
        return found


def _entry(result: ExampleResult) -> MemoEntry:
    return MemoEntry(
        score=float(result.score),
        status=result.status,
        output=result.output,
        feedback=result.feedback,
        objectives={k: float(v) for k, v in result.objectives.items()},
        error=result.error,
    )


def _result_row(example_id: str, entry: MemoEntry, memo_hit: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "example_id": example_id,
        "score": entry.score,
        "status": entry.status,
        "memo_hit": memo_hit,
    }
    if entry.objectives:
        row["objectives"] = dict(sorted(entry.objectives.items()))
    return row
