"""Running an iteration's work ahead of its commit, and handing the results over.

When iterations overlap, each one's work (minibatch rollouts, proposer calls, the
validation of a child that passed its test) runs as soon as it is planned, on a
*view*: the run as it stood when the iteration was planned. The view is rebuilt from
facts recorded in the plan (how many candidates and rejected texts existed, which
minibatch examples the parent lacked), never from whatever happens to be committed
when the work runs, so the same plan fetches the same things, on a resumed run too.

At its commit the iteration runs again, for real, on the committed state, and is
served what was fetched (`Prefetch`); what the commit did not use is still charged,
since it was spent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gepa_cli.engine.budget import Ledger, Work
from gepa_cli.engine.state import Counters, EngineState, MergeBook, content_hash
from gepa_cli.engine.types import (
    EvaluationRequest,
    Evaluator,
    ExampleResult,
    ProposalRequest,
    ProposalResult,
    Proposer,
)
from gepa_cli.errors import ProposerError


@dataclass(frozen=True)
class View:
    """What an iteration saw when it was planned, as facts that stay true: the committed
    candidates and rejected texts only ever grow at the end, and the memo never loses a
    row, so a prefix length and a list of missing examples pin the view down."""

    candidates: int
    rejected: int
    parent_hash: str | None = None
    parent_missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "rejected": self.rejected,
            "parent_hash": self.parent_hash,
            "parent_missing": list(self.parent_missing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> View:
        parent = data.get("parent_hash")
        return cls(
            candidates=int(data["candidates"]),
            rejected=int(data["rejected"]),
            parent_hash=None if parent is None else str(parent),
            parent_missing=tuple(str(e) for e in data.get("parent_missing", [])),
        )


def view_state(state: EngineState, view: View, minibatch: Sequence[str]) -> EngineState:
    """The run as ``view`` saw it, for the iteration's work to run on. Committed values
    are shared (nothing in an iteration's work changes them); what the work adds (a
    child, its memo rows, counters) lands in fresh containers of the view only."""
    memo = {}
    if view.parent_hash is not None:
        rows = state.memo.get(view.parent_hash, {})
        memo[view.parent_hash] = {
            e: rows[e] for e in minibatch if e not in view.parent_missing and e in rows
        }
    return EngineState(
        target_modules=state.target_modules,
        train_ids=state.train_ids,
        val_ids=state.val_ids,
        heldout_ids=state.heldout_ids,
        candidates=list(state.candidates[: view.candidates]),
        memo=memo,
        inputs=dict(state.inputs),
        rejected_hashes=list(state.rejected_hashes[: view.rejected]),
        ledger=Ledger(),
        counters=Counters(),
        merge=MergeBook(),
        val_order=state.val_order,
    )


class NoDraws(random.Random):
    """The RNG of work that must not draw: every draw belongs to the plan."""

    def random(self) -> float:
        raise AssertionError("an iteration's work drew from the RNG; draws belong to its plan")

    def getrandbits(self, k: int) -> int:
        raise AssertionError("an iteration's work drew from the RNG; draws belong to its plan")


@dataclass
class Prefetch:
    """Results fetched ahead for one iteration, each handed to its commit once."""

    # (content hash, example id) -> (the request that fetched it, its result)
    rollouts: dict[tuple[str, str], tuple[EvaluationRequest, ExampleResult]] = field(
        default_factory=dict
    )
    # proposal id -> (request, answer or the error the proposer raised)
    proposals: dict[str, tuple[ProposalRequest, ProposalResult | ProposerError]] = field(
        default_factory=dict
    )
    # pairs the iteration owes whatever the memo holds at its commit (fetched for it)
    owed: set[tuple[str, str]] = field(default_factory=set)

    def take(self, digest: str, example_ids: Sequence[str]) -> dict[str, ExampleResult]:
        ready: dict[str, ExampleResult] = {}
        for eid in example_ids:
            found = self.rollouts.pop((digest, eid), None)
            if found is not None:
                ready[eid] = found[1]
        return ready

    def owes(self, digest: str, example_id: str) -> bool:
        return (digest, example_id) in self.owed

    def leftovers(self) -> list[tuple[EvaluationRequest, list[ExampleResult]]]:
        """What the commit did not use, per request that fetched it, in a stable order."""
        groups: dict[tuple[str, str, str], tuple[EvaluationRequest, list[ExampleResult]]] = {}
        for key in sorted(self.rollouts):
            request, result = self.rollouts[key]
            group = (request.split, request.candidate_id, key[0])
            groups.setdefault(group, (request, []))[1].append(result)
        self.rollouts.clear()
        return [
            (dataclasses.replace(request, example_ids=[r.example_id for r in results]), results)
            for request, results in groups.values()
        ]


class Lanes:
    """How many proposer calls and evaluation batches overlapping iterations may have
    under way at once (timing only: never part of a decision)."""

    def __init__(self, propose: int | None = None, evaluate: int | None = None) -> None:
        self.propose = asyncio.Semaphore(propose) if propose else None
        self.evaluate = asyncio.Semaphore(evaluate) if evaluate else None


class Fetching:
    """Evaluator and proposer of an iteration's work: calls through and keeps every
    answer for the commit."""

    def __init__(
        self, evaluator: Evaluator, proposer: Proposer, store: Prefetch, lanes: Lanes
    ) -> None:
        self.evaluator = evaluator
        self.proposer = proposer
        self.store = store
        self.lanes = lanes

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        if self.lanes.evaluate is None:
            results = await self.evaluator.evaluate(request)
        else:
            async with self.lanes.evaluate:
                results = await self.evaluator.evaluate(request)
        digest = content_hash(request.texts)
        for result in results:
            key = (digest, result.example_id)
            self.store.rollouts.setdefault(key, (request, result))
        return results

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        try:
            if self.lanes.propose is None:
                answer = await self.proposer.propose(request)
            else:
                async with self.lanes.propose:
                    answer = await self.proposer.propose(request)
        except ProposerError as error:
            self.store.proposals[request.proposal_id] = (request, error)
            raise
        self.store.proposals[request.proposal_id] = (request, answer)
        return answer


class Replaying:
    """The commit's proposer: the answer fetched ahead when the request is the same,
    else a call now."""

    def __init__(self, proposer: Proposer, store: Prefetch) -> None:
        self.proposer = proposer
        self.store = store

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        fetched = self.store.proposals.pop(request.proposal_id, None)
        if fetched is None or fetched[0] != request:
            return await self.proposer.propose(request)
        answer = fetched[1]
        if isinstance(answer, ProposerError):
            raise answer
        return answer


def worst_of(plans: Sequence[Work]) -> Work:
    """The largest of several worst cases, per kind of work."""
    return Work(
        max((w.optimization_rollouts for w in plans), default=0),
        max((w.heldout_rollouts for w in plans), default=0),
        max((w.proposals for w in plans), default=0),
    )
