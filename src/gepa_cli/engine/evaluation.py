"""Evaluation through the within-run memo, with the budget checked before dispatch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from gepa_cli.engine.budget import BudgetGuard, Work
from gepa_cli.engine.events import EVALUATION_COMPLETED, Emitter
from gepa_cli.engine.state import EngineState, MemoEntry
from gepa_cli.engine.types import EvaluationRequest, Evaluator, Texts, Usage
from gepa_cli.errors import ContainerContractError


class BudgetStop(Exception):
    """Work would pass a hard limit; the run ends at the last safe point's totals."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class MemoEvaluator:
    def __init__(
        self,
        evaluator: Evaluator,
        state: EngineState,
        guard: BudgetGuard,
        emitter: Emitter,
        elapsed: Callable[[], float],
    ) -> None:
        self.evaluator = evaluator
        self.state = state
        self.guard = guard
        self.emitter = emitter
        self.elapsed = elapsed

    def require(self, work: Work) -> None:
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
        """Scores of ``texts`` on ``example_ids``; only pairs never evaluated in this run
        are dispatched, counted and charged."""
        ids = list(dict.fromkeys(example_ids))
        missing = self.missing(digest, ids)
        spent = Usage()
        if missing:
            heldout = role == "heldout"
            self.require(
                Work(
                    optimization_rollouts=0 if heldout else len(missing),
                    heldout_rollouts=len(missing) if heldout else 0,
                )
            )
            request = EvaluationRequest(eval_id, dict(texts), missing, role, capture_traces)
            results = await self.evaluator.evaluate(request)
            got = [r.example_id for r in results]
            if got != missing:
                raise ContainerContractError(
                    f"evaluator answered {len(results)} results for {eval_id} on "
                    f"{len(missing)} {role} examples, not one per requested id in order",
                    hint="the evaluator must return results in request order",
                )
            rows = self.state.memo.setdefault(digest, {})
            for result in results:
                if not math.isfinite(result.score):
                    raise ContainerContractError(
                        f"rollout of {eval_id} on {result.example_id} returned a non-finite "
                        f"score ({result.score})",
                        hint="the reward must be a finite number",
                    )
                self.state.ledger.record_rollout(role, result.usage)
                spent = spent + result.usage
                rows[result.example_id] = MemoEntry(
                    score=float(result.score),
                    status=result.status,
                    output=result.output,
                    feedback=result.feedback,
                    objectives={k: float(v) for k, v in result.objectives.items()},
                    error=result.error,
                )
                if result.inputs and result.example_id not in self.state.inputs:
                    self.state.inputs[result.example_id] = dict(result.inputs)
        rows = self.state.memo.get(digest, {})
        found = {e: rows[e] for e in ids}
        self.emitter.emit(
            EVALUATION_COMPLETED,
            {
                "eval_id": eval_id,
                "content_hash": digest,
                "role": role,
                "purpose": purpose,
                "iteration": iteration,
                "results": [_result_row(e, found[e], e not in missing) for e in sorted(ids)],
                "mean": sum(r.score for r in found.values()) / len(found) if found else 0.0,
                "rollouts": len(missing),
                "memo_hits": len(ids) - len(missing),
                "usage": spent.to_dict(),
            },
        )
        return found


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
