"""A run restored from any of its checkpoints finishes exactly like the run that was
never interrupted: same decisions, same candidates, same remaining events."""

from __future__ import annotations

import asyncio
from collections import Counter

from gepa_cli.engine import EngineSettings, GepaEngine

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

TASK = PhraseTask(
    modules=("planner", "writer"), tokens_per_example=3, n_tokens=12, forbidden_per_example=3
)
SETTINGS = EngineSettings(
    max_total_rollouts=300,
    minibatch_size=3,
    use_merge=True,
    max_merge_invocations=4,
    merge_subsample_size=4,
    skip_perfect_score=True,
)


def test_resume_from_every_checkpoint_matches_the_uninterrupted_run() -> None:
    full = make_run(
        SETTINGS,
        task=TASK,
        proposer=FeedbackProposer(noise=0.3),
        n_train=10,
        n_val=10,
        n_heldout=3,
        rng_seed=1,
    )
    result = execute(full)
    kinds = Counter(full.sink.types())
    assert 250 <= result.budget["rollouts"]["total"] <= 300
    assert kinds["merge.proposed"] >= 1, kinds  # the snapshot must carry merge bookkeeping
    assert kinds["candidate.rejected"] >= 1 and kinds["candidate.accepted"] >= 2
    assert len(full.snapshots.saved) >= 10

    for snapshot in full.snapshots.saved:
        start = snapshot["next_event_index"]
        assert full.sink.events[start - 1][0] == "checkpoint"
        sink, evaluator = RecordingSink(), FakeEvaluator(TASK)
        engine = GepaEngine.restore(
            snapshot, evaluator, FeedbackProposer(noise=0.3), sink, FakeControl(), Snapshots()
        )
        resumed = asyncio.run(engine.run())
        assert sink.events == full.sink.events[start:]
        assert resumed.best_candidate_id == result.best_candidate_id
        assert resumed.best_texts == result.best_texts
        assert resumed.budget == result.budget
        assert [c.to_dict() for c in resumed.state.candidates] == [
            c.to_dict() for c in result.state.candidates
        ]


def test_resume_refuses_changed_search_settings_but_accepts_a_larger_budget() -> None:
    import dataclasses

    import pytest

    from gepa_cli.errors import ResumeError

    run = make_run(SETTINGS, task=TASK, proposer=FeedbackProposer(noise=0.3))
    execute(run)
    snapshot = run.snapshots.saved[2]
    other = dataclasses.replace(SETTINGS, minibatch_size=4)
    with pytest.raises(ResumeError, match="minibatch_size"):
        GepaEngine.restore(
            snapshot,
            FakeEvaluator(TASK),
            FeedbackProposer(),
            RecordingSink(),
            FakeControl(),
            None,
            settings=other,
        )
    bigger = dataclasses.replace(SETTINGS, max_total_rollouts=400)
    engine = GepaEngine.restore(
        snapshot,
        FakeEvaluator(TASK),
        FeedbackProposer(),
        RecordingSink(),
        FakeControl(),
        None,
        settings=bigger,
    )
    assert asyncio.run(engine.run()).budget["rollouts"]["total"] <= 400


def test_damaged_snapshots_raise_resume_error() -> None:
    import pytest

    from gepa_cli.errors import ResumeError

    run = make_run(SETTINGS, task=TASK)
    execute(run)
    good = run.snapshots.saved[1]
    for bad in (
        {},
        {**good, "format": "other"},
        {k: v for k, v in good.items() if k != "rng_state"},
        {**good, "state": {**good["state"], "candidates": "x"}},
        {**good, "rng_state": [1, 2]},
    ):
        with pytest.raises(ResumeError) as info:
            GepaEngine.restore(
                bad, FakeEvaluator(TASK), FeedbackProposer(), RecordingSink(), FakeControl(), None
            )
        assert "\n" not in str(info.value)
