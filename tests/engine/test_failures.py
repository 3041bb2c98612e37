"""Bad proposals cost no evaluations, repeated failures stop the run loudly, and
duplicates cannot make the engine spin."""

from __future__ import annotations

import dataclasses

import pytest

from gepa_cli.engine import EngineSettings, ExampleResult
from gepa_cli.errors import ProposerError

from .fakes import (
    FakeControl,
    FakeEvaluator,
    PhraseTask,
    ScriptedProposer,
    execute,
    make_run,
    proposer_error,
)

TASK = PhraseTask()
BASE = EngineSettings(max_total_rollouts=400, skip_perfect_score=False)


def test_consecutive_proposer_failures_stop_with_proposer_error() -> None:
    script = [proposer_error("timeout after 120 s"), ("reject", "empty"), ("reject", "truncated")]
    run = make_run(
        dataclasses.replace(BASE, max_consecutive_proposer_failures=3),
        proposer=ScriptedProposer(script),
    )
    with pytest.raises(ProposerError) as info:
        execute(run)
    message = str(info.value)
    assert "3 times in a row" in message
    assert "timeout after 120 s; empty; truncated" in message
    assert "max_consecutive_proposer_failures" in message
    finished = run.sink.of("run.finished")
    assert finished and finished[0]["stopped_by"] == "proposer_failures"
    assert [d["kind"] for d in run.sink.of("proposal.failed")] == [
        "error",
        "rejection",
        "rejection",
    ]
    # rejected answers spent no evaluation beyond the parent's minibatch
    assert not [r for r in run.evaluator.requests if r.candidate_id.startswith("p")]


def test_a_success_resets_the_failure_count() -> None:
    script = [("reject", "empty"), ("reject", "empty"), lambda r: r.current_text + " amber",
              ("reject", "empty"), ("reject", "empty"), lambda r: r.current_text + " birch",
              ("reject", "unchanged")]  # fmt: skip
    run = make_run(
        dataclasses.replace(BASE, max_consecutive_proposer_failures=3),
        proposer=ScriptedProposer(script),
    )
    with pytest.raises(ProposerError):
        execute(run)
    assert run.proposer.calls == 9


def test_unchanged_text_is_a_rejection_without_evaluation() -> None:
    run = make_run(
        dataclasses.replace(BASE, max_consecutive_proposer_failures=2),
        proposer=ScriptedProposer([lambda r: r.current_text + "  "]),
    )
    with pytest.raises(ProposerError, match="unchanged"):
        execute(run)
    assert all(r.candidate_id == "c0000" for r in run.evaluator.requests)


def test_rejected_texts_are_never_evaluated_again() -> None:
    # the proposer keeps suggesting the same useless text
    run = make_run(BASE, proposer=ScriptedProposer([lambda r: "You are lost."]))
    result = execute(run)
    child_evals = [
        r for r in run.evaluator.requests if r.texts == {"system_prompt": "You are lost."}
    ]
    assert len(child_evals) == 1
    assert len(run.sink.of("candidate.rejected")) == 1
    duplicates = run.sink.of("candidate.duplicate")
    assert duplicates and {d["reason"] for d in duplicates} == {"rejected_before"}
    # and the engine does not spin: a bounded run of no-op iterations ends it
    assert result.stopped_by == "no_new_proposals"
    assert len(duplicates) == BASE.max_consecutive_noop_iterations


def test_memo_evaluates_each_text_example_pair_once() -> None:
    run = make_run(
        dataclasses.replace(BASE, max_total_rollouts=300, use_merge=True),
        task=PhraseTask(modules=("a", "b"), forbidden_per_example=2, n_tokens=10),
    )
    result = execute(run)
    pairs = [
        (tuple(sorted(r.texts.items())), e) for r in run.evaluator.requests for e in r.example_ids
    ]
    assert len(pairs) == len(set(pairs)) == result.budget["rollouts"]["total"]
    hits = sum(d["memo_hits"] for d in run.sink.of("evaluation.completed"))
    assert hits > 0


def test_runtime_meta_never_changes_the_run() -> None:
    class NoisyMeta(FakeEvaluator):
        async def evaluate(self, request):  # type: ignore[no-untyped-def]
            results = await super().evaluate(request)
            return [
                dataclasses.replace(
                    r, meta={"latency_ms": len(self.requests) * 7.0, "cache": "hit"}
                )
                for r in results
            ]

    feeds = []
    for evaluator in (FakeEvaluator(TASK), NoisyMeta(TASK)):
        run = make_run(BASE, evaluator=evaluator)
        execute(run)
        feeds.append(run.sink.events)
    assert feeds[0] == feeds[1]
    assert ExampleResult  # the type the meta lives on


def test_external_stop_ends_at_a_safe_point_and_skips_heldout() -> None:
    run = make_run(BASE, control=FakeControl(stop_after_checks=3, reason="stop_file"), n_heldout=3)
    result = execute(run)
    assert result.stopped_by == "stop_file"
    assert result.iterations == 3
    assert result.budget["rollouts"]["heldout"] == 0
    assert {d["reason"] for d in run.sink.of("heldout.skipped")} == {"stop_file"}
    assert run.sink.types()[-1] == "run.finished"


def test_perfect_minibatches_are_skipped_without_spinning() -> None:
    task = PhraseTask(n_tokens=3, tokens_per_example=3)
    seed = " ".join(["amber", "birch", "cedar"])
    run = make_run(EngineSettings(max_total_rollouts=100), task=task)
    run.engine.seed_texts = {"system_prompt": seed}
    result = execute(run)
    assert result.budget["proposals"] == 0
    assert result.stopped_by == "no_new_proposals"
    assert len(run.sink.of("iteration.skipped")) == 25
