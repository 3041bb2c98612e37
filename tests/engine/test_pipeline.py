"""Overlapping iterations (async_pipelined): decisions never depend on timing, budgets
hold with K iterations in flight, and a run resumed from any checkpoint (with work in
flight) ends exactly like the uninterrupted one."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gepa_cli.engine import EngineSettings, GepaEngine
from gepa_cli.engine.types import EvaluationRequest, ExampleResult, ProposalRequest, ProposalResult

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

TASK = PhraseTask(modules=("a", "b"), n_tokens=10, forbidden_per_example=1)


@dataclass
class JitterEvaluator(FakeEvaluator):
    """Answers after a random delay, so batches finish in a different order every run."""

    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        await asyncio.sleep(self.rng.random() * 0.002)
        return await super().evaluate(request)


@dataclass
class JitterProposer(FeedbackProposer):
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        await asyncio.sleep(self.rng.random() * 0.003)
        return await super().propose(request)


def pipelined(k: int = 4, **overrides: object) -> EngineSettings:
    values: dict[str, object] = {
        "max_total_rollouts": 600,
        "pipeline_mode": "async_pipelined",
        "max_in_flight_candidates": k,
        **overrides,
    }
    return EngineSettings(**values)  # type: ignore[arg-type]


def run_with(settings: EngineSettings, seed: int, control: FakeControl | None = None):  # type: ignore[no-untyped-def]
    run = make_run(
        settings,
        task=TASK,
        proposer=JitterProposer(noise=0.3, seed=seed),
        evaluator=JitterEvaluator(TASK, seed=seed),
        n_train=20,
        n_val=12,
        n_heldout=5,
        rng_seed=1,
        control=control,
    )
    return run, execute(run)


def test_the_feed_does_not_depend_on_timing() -> None:
    base, result = run_with(pipelined(), seed=0)
    kinds = Counter(base.sink.types())
    assert result.stopped_by == "max_total_rollouts"
    assert kinds["candidate.accepted"] >= 5 and kinds["candidate.rejected"] >= 1
    for seed in (1, 2, 3):
        other, _ = run_with(pipelined(), seed=seed)
        assert other.sink.events == base.sink.events


def test_every_rollout_dispatched_is_charged_and_none_past_the_budget() -> None:
    run, result = run_with(pipelined(k=6), seed=5)
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"] <= 600
    assert run.proposer.calls == result.budget["proposals"]


def test_resume_from_every_checkpoint_with_work_in_flight() -> None:
    base, _ = run_with(pipelined(use_merge=True, max_merge_invocations=3), seed=0)
    saved = base.snapshots.saved
    in_flight = [snapshot for snapshot in saved if snapshot["in_flight"]]
    assert in_flight
    # each checkpoint costs a whole rerun: every third with work in flight, and the last
    for snapshot in [*in_flight[::3], saved[-1]]:
        start = snapshot["next_event_index"]
        sink = RecordingSink()
        engine = GepaEngine.restore(
            snapshot,
            JitterEvaluator(TASK, seed=start),
            JitterProposer(noise=0.3, seed=start),
            sink,
            FakeControl(),
            Snapshots(),
        )
        asyncio.run(engine.run())
        assert sink.events == base.sink.events[start:]


def test_a_stop_request_drops_work_in_flight_and_resume_redoes_it() -> None:
    base, _ = run_with(pipelined(), seed=0)
    stopped, result = run_with(pipelined(), seed=1, control=FakeControl(stop_after_checks=12))
    assert result.stopped_by == "stop_file"
    last = stopped.snapshots.saved[-1]
    assert last["in_flight"], "the stop came while iterations were in flight"
    start = last["next_event_index"]
    assert stopped.sink.events[:start] == base.sink.events[:start]
    sink = RecordingSink()
    engine = GepaEngine.restore(
        last,
        JitterEvaluator(TASK, seed=7),
        JitterProposer(noise=0.3, seed=7),
        sink,
        FakeControl(),
        Snapshots(),
    )
    asyncio.run(engine.run())
    assert sink.events == base.sink.events[start:]


def test_a_child_with_no_room_to_validate_waits_as_the_chain_tip_until_the_end() -> None:
    """In flight, an iteration reserves only its work ahead of the commit, so near the end
    of the budget a commit may find no room for its child's validation: the child then
    extends the chain (under `full` validation nothing else does), and the end of the run
    validates the tip from the room kept for it."""
    found = None
    for budget in range(260, 900, 40):
        settings_ = pipelined(k=6, max_total_rollouts=budget, validation_policy="full")
        run, result = run_with(settings_, seed=0)
        extended = run.sink.of("chain.extended")
        if extended:
            found = (settings_, run, result, extended)
            break
    assert found is not None, "no run had a commit without room to validate"
    settings_, run, result, extended = found
    total = settings_.max_total_rollouts
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"] <= total
    registered = {d["candidate_id"] for d in run.sink.of("candidate.registered")}
    validated = {d["candidate_id"] for d in run.sink.of("candidate.validated")}
    assert registered == validated
    tip = extended[-1]["content_hash"]
    assert tip in {d["content_hash"] for d in run.sink.of("candidate.registered")}
    assert not [d for d in run.sink.of("chain.abandoned") if d["content_hash"] == tip]
    other, _ = run_with(settings_, seed=3)
    assert other.sink.events == run.sink.events


def test_work_fetched_for_a_child_that_became_a_duplicate_is_charged_and_reported() -> None:
    found = None
    for seed in range(6):
        run, result = run_with(pipelined(k=8, max_total_rollouts=900), seed=seed)
        discarded = run.sink.of("evaluation.discarded")
        if discarded:
            found = (run, result, discarded)
            break
    assert found is not None, "no run had a late duplicate"
    run, result, discarded = found
    assert all(d["rollouts"] == len(d["example_ids"]) > 0 for d in discarded)
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"]


def test_serial_settings_leave_the_feed_as_it_was() -> None:
    serial = EngineSettings(max_total_rollouts=100)
    assert "pipeline_mode" not in serial.to_dict()
    assert pipelined().to_dict()["max_in_flight_candidates"] == 4


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 400),
    k=st.integers(1, 8),
    n_val=st.integers(1, 20),
    n_train=st.integers(1, 10),
    minibatch=st.integers(1, 6),
    merge=st.booleans(),
    racing=st.booleans(),
    proposals=st.one_of(st.none(), st.integers(1, 30)),
)
def test_no_budget_is_ever_exceeded_with_iterations_in_flight(
    total: int,
    k: int,
    n_val: int,
    n_train: int,
    minibatch: int,
    merge: bool,
    racing: bool,
    proposals: int | None,
) -> None:
    settings_ = pipelined(
        k=k,
        max_total_rollouts=total,
        max_proposals=proposals,
        minibatch_size=minibatch,
        use_merge=merge,
        validation_policy="racing" if racing else "full",
    )
    run = make_run(
        settings_,
        task=TASK,
        proposer=FeedbackProposer(noise=0.3),
        n_train=n_train,
        n_val=n_val,
        n_heldout=2,
    )
    try:
        result = execute(run)
    except Exception as error:  # the seed validation alone may not fit
        assert type(error).__name__ == "BudgetError"
        assert run.evaluator.dispatched == 0
        return
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"] <= total
    if proposals is not None:
        assert run.proposer.calls == result.budget["proposals"] <= proposals
