"""Racing validation: children are screened in stages and dropped when clearly worse;
the budget still holds, the frontier only ever holds fully validated candidates, runs
resume identically, and `full` stays exactly what it was."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gepa_cli.engine import EngineSettings, GepaEngine
from gepa_cli.engine.racing import RacingValidation, stage_sizes, worse_bound
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

TASK = PhraseTask(modules=("a", "b"), n_tokens=12)


class TrapEvaluator(FakeEvaluator):
    """A text holding "trap" looks fine on train but fails every validation example:
    the child a minibatch test lets through and racing must stop."""

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        results = await super().evaluate(request)
        if request.split != "val" or not any("trap" in t for t in request.texts.values()):
            return results
        return [dataclasses.replace(r, score=0.0, feedback="trap") for r in results]


@dataclass
class TrapProposer:
    """The feedback proposer, with "trap" added to every other proposal once the run
    has a candidate that scores on validation."""

    inner: FeedbackProposer = field(default_factory=lambda: FeedbackProposer(noise=0.2))
    calls: int = 0

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        self.calls += 1
        answer = await self.inner.propose(request)
        if self.calls % 2 == 0 and self.calls > 4 and answer.new_text is not None:
            return ProposalResult(answer.new_text + " trap", usage=answer.usage)
        return answer


def _trap_run(settings: EngineSettings, seed: int = 0) -> tuple[GepaEngine, RecordingSink]:
    run = make_run(
        settings,
        task=TASK,
        proposer=TrapProposer(),
        evaluator=TrapEvaluator(TASK),
        n_train=12,
        n_val=60,
        n_heldout=4,
        rng_seed=seed,
    )
    execute(run)
    return run.engine, run.sink


RACING = EngineSettings(max_total_rollouts=1500, validation_policy="racing")


def test_stage_sizes_double_up_to_the_whole_set() -> None:
    assert stage_sizes(200) == [25, 50, 100, 200]
    assert stage_sizes(25) == [25]
    assert stage_sizes(7) == [7]


def test_the_bound_needs_discordant_evidence() -> None:
    ids = [str(i) for i in range(40)]
    same = dict.fromkeys(ids, 1.0)
    assert worse_bound(same, same, ids, 4, 0.05)["upper_bound"] is None
    child = {**same, **dict.fromkeys(ids[:3], 0.0)}
    assert not worse_bound(child, same, ids, 4, 0.05)["clearly_worse"]  # 3 losses: unclear
    child = {**same, **dict.fromkeys(ids[:12], 0.0)}
    assert worse_bound(child, same, ids, 4, 0.05)["clearly_worse"]


def test_screen_drops_a_clearly_worse_child_at_the_first_stage() -> None:
    order = [f"v{i}" for i in range(100)]
    rival = dict.fromkeys(order, 1.0)
    asked: list[int] = []

    async def evaluate(ids: Sequence[str]) -> Mapping[str, float]:
        asked.append(len(ids))
        return dict.fromkeys(ids, 0.0)

    stages: list[Mapping[str, object]] = []
    outcome = asyncio.run(
        RacingValidation().screen(order, evaluate, {"c0000": rival}, stages.append)
    )
    assert outcome.dropped and outcome.stage == 1 and outcome.rival_id == "c0000"
    assert asked == [25] and len(outcome.scores) == 25
    assert [s["decision"] for s in stages] == ["drop"]


def test_racing_drops_trap_children_and_keeps_the_frontier_fully_validated() -> None:
    engine, sink = _trap_run(RACING)
    kinds = Counter(sink.types())
    assert kinds["candidate.dropped"] >= 2, kinds
    assert kinds["candidate.accepted"] >= 2, kinds
    dropped = {d["content_hash"] for d in sink.of("candidate.dropped")}
    registered = {d["content_hash"] for d in sink.of("candidate.registered")}
    assert not dropped & registered  # a dropped child never becomes a candidate
    n_val = len(engine.state.val_ids)
    for data in sink.of("candidate.validated"):
        assert data["val_count"] == n_val
    validated = {d["candidate_id"] for d in sink.of("candidate.validated")}
    for data in sink.of("frontier.updated"):
        members = {c for ids in data["frontier"].values() for c in ids}
        # only scores that exist: every member was validated on every example
        assert members <= validated
        assert set(data["frontier"]) <= set(engine.state.val_ids)
    # a dropped child stopped early: it cost less than a full validation
    assert all(d["val_count"] < n_val for d in sink.of("candidate.dropped"))


def test_racing_resumes_identically_from_every_checkpoint() -> None:
    for policy_settings in (
        EngineSettings(max_total_rollouts=450, validation_policy="racing"),
        EngineSettings(
            max_total_rollouts=450,
            validation_policy="racing",
            minibatch_schedule="validation_share",
            use_merge=True,
        ),
    ):
        run = make_run(
            policy_settings,
            task=TASK,
            proposer=TrapProposer(),
            evaluator=TrapEvaluator(TASK),
            n_train=12,
            n_val=50,
            n_heldout=4,
            rng_seed=3,
        )
        execute(run)
        assert Counter(run.sink.types())["candidate.dropped"] >= 1
        assert len(run.snapshots.saved) >= 5
        for snapshot in run.snapshots.saved:
            start = snapshot["next_event_index"]
            sink = RecordingSink()
            engine = GepaEngine.restore(
                snapshot, TrapEvaluator(TASK), TrapProposer(), sink, FakeControl(), Snapshots()
            )
            # the proposer's alternation is part of the fake, not of the snapshot
            engine.proposer = _proposer_after(run.sink.events[:start])
            asyncio.run(engine.run())
            assert sink.events == run.sink.events[start:]


def _proposer_after(events: list[tuple[str, dict[str, object]]]) -> TrapProposer:
    calls = sum(1 for t, _ in events if t in ("proposal.completed", "proposal.failed"))
    proposer = TrapProposer()
    proposer.calls = calls
    return proposer


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 400),
    n_val=st.integers(1, 40),
    n_train=st.integers(1, 8),
    n_heldout=st.integers(0, 4),
    minibatch=st.integers(1, 5),
    merge=st.booleans(),
    schedule=st.sampled_from(["fixed", "validation_share"]),
    seed=st.integers(0, 3),
)
def test_racing_never_spends_more_than_the_budget(
    total: int,
    n_val: int,
    n_train: int,
    n_heldout: int,
    minibatch: int,
    merge: bool,
    schedule: str,
    seed: int,
) -> None:
    from gepa_cli.errors import BudgetError

    s = EngineSettings(
        max_total_rollouts=total,
        minibatch_size=minibatch,
        use_merge=merge,
        merge_subsample_size=3,
        validation_policy="racing",
        minibatch_schedule=schedule,
    )
    run = make_run(
        s,
        task=TASK,
        proposer=TrapProposer(),
        evaluator=TrapEvaluator(TASK),
        n_train=n_train,
        n_val=n_val,
        n_heldout=n_heldout,
        rng_seed=seed,
    )
    try:
        result = execute(run)
    except BudgetError:
        assert run.evaluator.dispatched == 0
        return
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"] <= total
    for data in run.sink.of("budget.updated"):
        assert data["rollouts"]["total"] <= total


def test_full_settings_keep_their_old_shape() -> None:
    # run.started carries the settings: a new field at its old-behaviour value is left
    # out so feeds recorded before it existed stay byte-identical
    data = EngineSettings(max_total_rollouts=10).to_dict()
    assert "minibatch_schedule" not in data and data["validation_policy"] == "full"
    shared = EngineSettings(max_total_rollouts=10, minibatch_schedule="validation_share")
    assert shared.to_dict()["minibatch_schedule"] == "validation_share"
    assert EngineSettings.from_mapping(shared.to_dict()) == shared
    assert shared.minibatch_for(200) == 20 and shared.minibatch_for(10) == 3
