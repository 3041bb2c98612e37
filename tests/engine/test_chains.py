"""Adaptive validation: chains of minibatch-accepted edits validated at their tip.

Nothing enters the frontier or is reported best without a full validation; the
budget holds with chains open (the closing validation always fits); chains grow where
minibatch gains survive validation and shrink to plain GEPA where they do not; and a
run resumes identically from every checkpoint, sequential or overlapping."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest import MonkeyPatch

from gepa_cli.engine import EngineSettings, GepaEngine
from gepa_cli.engine.chain import AdaptiveValidation, ChainBook
from gepa_cli.engine.types import EvaluationRequest, ExampleResult
from gepa_cli.errors import BudgetError

from .fakes import (
    FakeControl,
    FakeEvaluator,
    FeedbackProposer,
    PhraseTask,
    RecordingSink,
    Snapshots,
    execute,
    make_run,
)

TASK = PhraseTask(modules=("a", "b"), n_tokens=12)


def adaptive(**overrides: object) -> EngineSettings:
    values: dict[str, object] = {"max_total_rollouts": 900, "validation_policy": "adaptive"}
    return EngineSettings(**{**values, **overrides})  # type: ignore[arg-type]


@dataclass
class MisleadingEvaluator(FakeEvaluator):
    """Train examples reward one thing, validation examples punish it: every minibatch
    gain is a validation loss (the regime where skipping validation must lose)."""

    def __post_init__(self) -> None:
        self.flip = True

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        results = await super().evaluate(request)
        if request.split != "val":
            return results
        return [
            ExampleResult(
                example_id=r.example_id,
                score=round(1.0 - r.score, 6),
                output=r.output,
                feedback=r.feedback,
                usage=r.usage,
                inputs=r.inputs,
            )
            for r in results
        ]


def test_tip_updates_grow_on_gains_and_halve_on_losses() -> None:
    policy, book = AdaptiveValidation(), ChainBook()
    assert policy.wants_validation(1, book)
    policy.record_tip(book, improved=True)
    policy.record_tip(book, improved=True)
    assert book.target == 16 and not policy.wants_validation(15, book)
    assert policy.wants_validation(16, book)
    policy.record_tip(book, improved=False)
    assert book.target == 8 and (book.tips, book.improved) == (3, 2)
    for _ in range(3):
        policy.record_tip(book, improved=True)
    assert book.target == 64  # MAX_TARGET


def test_chains_grow_where_gains_hold_and_only_validated_tips_are_candidates() -> None:
    run = make_run(adaptive(), task=TASK, proposer=FeedbackProposer(), n_val=8, n_train=10)
    result = execute(run)
    sink = run.sink
    kinds = Counter(sink.types())
    assert kinds["chain.extended"] >= 3, kinds
    assert any(d.get("chain", {}).get("length", 1) >= 3 for d in sink.of("candidate.accepted"))
    # every candidate but the seed was accepted, then validated on the whole set
    accepted = {d["candidate_id"] for d in sink.of("candidate.accepted")}
    registered = [d["candidate_id"] for d in sink.of("candidate.registered")]
    assert set(registered[1:]) == accepted
    n_val = len(run.engine.state.val_ids)
    validated = {d["candidate_id"] for d in sink.of("candidate.validated")}
    assert all(d["val_count"] == n_val for d in sink.of("candidate.validated"))
    # chain tips never reach the frontier, the best or the heldout unvalidated
    tips = {d["content_hash"] for d in sink.of("chain.extended")}
    hashes = {d["candidate_id"]: d["content_hash"] for d in sink.of("candidate.registered")}
    for data in sink.of("frontier.updated"):
        members = {c for ids in data["frontier"].values() for c in ids}
        assert members <= validated
    assert result.best_candidate_id in validated
    assert hashes[result.best_candidate_id] not in tips - set(hashes.values())
    assert result.best_val_mean > result.seed_val_mean


def test_where_gains_do_not_hold_it_is_plain_gepa() -> None:
    evaluator = MisleadingEvaluator(TASK)
    run = make_run(adaptive(), task=TASK, evaluator=evaluator, n_val=8, n_train=10)
    execute(run)
    book = run.engine.state.chains
    assert book.tips >= 3 and book.improved == 0 and book.target == 1
    assert Counter(run.sink.types())["chain.extended"] == 0


def test_an_open_chain_is_validated_at_the_end_of_the_run(monkeypatch: MonkeyPatch) -> None:
    # a target that never comes: every accepted edit extends the chain until the end
    settings_ = adaptive(max_total_rollouts=300)
    run = make_run(settings_, task=TASK, n_val=8, n_train=10)
    monkeypatch.setattr(AdaptiveValidation, "wants_validation", _never)
    result = execute(run)
    accepted = run.sink.of("candidate.accepted")
    assert len(accepted) == 1 and accepted[0]["chain"]["length"] >= 2
    assert result.best_candidate_id == accepted[0]["candidate_id"]
    assert result.budget["rollouts"]["total"] <= 300


def spread(items: list[Any], count: int) -> list[Any]:
    """At most ``count`` items, evenly spaced, the first and last included."""
    if len(items) <= count:
        return list(items)
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def _never(self: AdaptiveValidation, length: int, book: ChainBook) -> bool:
    return False


def test_resume_from_every_checkpoint_with_a_chain_open() -> None:
    for overrides in ({}, {"pipeline_mode": "async_pipelined", "max_in_flight_candidates": 3}):
        run = make_run(
            adaptive(**overrides),
            task=TASK,
            proposer=FeedbackProposer(noise=0.1),
            n_val=10,
            n_train=12,
            n_heldout=3,
            rng_seed=2,
        )
        execute(run)
        saved = run.snapshots.saved
        open_ones = [s for s in saved if s["state"]["chains"]["chain"]]
        assert open_ones, "no chain was ever open"
        # every checkpoint costs a whole rerun: the ones with a chain open, spread out,
        # and the first and last
        for snapshot in [saved[0], *spread(open_ones, 6), saved[-1]]:
            start = snapshot["next_event_index"]
            sink = RecordingSink()
            engine = GepaEngine.restore(
                snapshot,
                FakeEvaluator(TASK),
                FeedbackProposer(noise=0.1),
                sink,
                FakeControl(),
                Snapshots(),
            )
            asyncio.run(engine.run())
            assert sink.events == run.sink.events[start:], overrides


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 400),
    n_val=st.integers(1, 30),
    n_train=st.integers(1, 8),
    n_heldout=st.integers(0, 4),
    minibatch=st.integers(1, 5),
    k=st.integers(1, 4),
    merge=st.booleans(),
    noise=st.sampled_from([0.0, 0.5]),
)
def test_chains_never_spend_past_the_budget_nor_admit_an_unvalidated_score(
    total: int,
    n_val: int,
    n_train: int,
    n_heldout: int,
    minibatch: int,
    k: int,
    merge: bool,
    noise: float,
) -> None:
    pipelined = {"pipeline_mode": "async_pipelined", "max_in_flight_candidates": k}
    s = adaptive(
        max_total_rollouts=total,
        minibatch_size=minibatch,
        use_merge=merge,
        **(pipelined if k > 1 else {}),
    )
    run = make_run(
        s,
        task=TASK,
        proposer=FeedbackProposer(noise=noise),
        n_train=n_train,
        n_val=n_val,
        n_heldout=n_heldout,
    )
    try:
        result = execute(run)
    except BudgetError:
        assert run.evaluator.dispatched == 0
        return
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"] <= total
    validated = {d["candidate_id"] for d in run.sink.of("candidate.validated")}
    assert all(d["val_count"] == n_val for d in run.sink.of("candidate.validated"))
    for data in run.sink.of("frontier.updated"):
        assert {c for ids in data["frontier"].values() for c in ids} <= validated
        assert data["best_candidate_id"] in validated
    assert result.best_candidate_id in validated
