"""Hard limits hold before dispatch, for rollouts, proposals, cost, tokens and time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gepa_cli.config.models import GepaSettings
from gepa_cli.engine import EngineSettings, Usage, preview_budget
from gepa_cli.errors import BudgetError, ConfigError

from .fakes import FakeControl, FakeEvaluator, FeedbackProposer, PhraseTask, execute, make_run

TASK = PhraseTask(modules=("a", "b"), forbidden_per_example=2, n_tokens=10)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_cost=st.floats(0.05, 0.6),
    max_tokens=st.integers(300, 6000),
    rollout_cost=st.floats(0.0005, 0.004),
    proposal_cost=st.floats(0.005, 0.03),
    underestimate=st.booleans(),
)
def test_cost_and_tokens_never_exceeded(
    max_cost: float, max_tokens: int, rollout_cost: float, proposal_cost: float, underestimate: bool
) -> None:
    # estimates may be too low: the engine then reserves the largest recorded usage
    factor = 0.5 if underestimate else 1.0
    s = EngineSettings(
        max_cost_usd=max_cost,
        max_tokens=max_tokens,
        est_cost_per_rollout_usd=rollout_cost * factor,
        est_cost_per_proposal_usd=proposal_cost * factor,
        est_tokens_per_rollout=int(15 * factor),
        est_tokens_per_proposal=int(120 * factor),
        use_merge=True,
    )
    evaluator = FakeEvaluator(TASK, usage=Usage(10, 5, rollout_cost))
    proposer = FeedbackProposer(noise=0.3, usage=Usage(100, 20, proposal_cost))
    run = make_run(s, task=TASK, evaluator=evaluator, proposer=proposer, n_heldout=2)
    try:
        result = execute(run)
    except BudgetError:
        assert evaluator.dispatched == 0
        return
    # one unit may cost more than its estimate before the engine has seen it
    slack_cost = (rollout_cost + proposal_cost) if underestimate else 1e-9
    slack_tokens = 120 if underestimate else 0
    assert result.budget["cost_usd"] <= max_cost + slack_cost
    assert result.budget["tokens"] <= max_tokens + slack_tokens
    if not underestimate:
        assert result.stopped_by in {"max_cost_usd", "max_tokens", "no_new_proposals"}


def test_exact_estimates_stop_within_cost_and_report_the_limit() -> None:
    s = EngineSettings(
        max_cost_usd=0.2, est_cost_per_rollout_usd=0.001, est_cost_per_proposal_usd=0.01
    )
    run = make_run(s, task=TASK, proposer=FeedbackProposer(noise=0.3))
    result = execute(run)
    assert result.stopped_by == "max_cost_usd"
    assert result.budget["cost_usd"] <= 0.2
    # the next iteration's worst case would not have fit
    worst = (2 * 3 + 6) * 0.001 + 0.01
    assert result.budget["cost_usd"] + worst > 0.2


def test_max_proposals_and_train_rollouts_are_exact_limits() -> None:
    run = make_run(EngineSettings(max_proposals=4), task=TASK, proposer=FeedbackProposer(noise=0.3))
    result = execute(run)
    assert result.budget["proposals"] == 4 == run.proposer.calls
    assert result.stopped_by == "max_proposals"
    run = make_run(EngineSettings(max_train_rollouts=50), task=TASK, n_heldout=3)
    result = execute(run)
    assert result.budget["rollouts"]["train"] + result.budget["rollouts"]["val"] <= 50
    assert result.budget["rollouts"]["heldout"] == 6  # heldout is outside the train budget


def test_heldout_is_reserved_up_front_within_the_total() -> None:
    run = make_run(EngineSettings(max_total_rollouts=60), task=TASK, n_heldout=5)
    result = execute(run)
    assert result.budget["rollouts"]["total"] <= 60
    assert result.seed_heldout_mean is not None and result.best_heldout_mean is not None
    assert run.evaluator.requests[-1].split == "heldout"
    # a heldout budget for one candidate only: the seed is measured, the best is skipped
    run = make_run(
        EngineSettings(max_total_rollouts=60, max_heldout_rollouts=5), task=TASK, n_heldout=5
    )
    result = execute(run)
    assert result.budget["rollouts"]["heldout"] <= 5
    assert result.seed_heldout_mean is not None
    if result.best_candidate_id != "c0000":
        assert result.best_heldout_mean is None
        assert run.sink.of("heldout.skipped")[0]["reason"] == "max_heldout_rollouts"


def test_wall_time_reservation_uses_the_control_clock() -> None:
    s = EngineSettings(max_wall_seconds=100, est_seconds_per_rollout=1, est_seconds_per_proposal=5)
    control = FakeControl(elapsed=85)
    run = make_run(s, task=TASK, control=control)
    result = execute(run)
    assert result.stopped_by == "max_wall_seconds"  # 85 + 6 (seed) fits, an iteration does not
    assert result.budget["rollouts"]["total"] == 6
    with pytest.raises(BudgetError, match="max_wall_seconds"):
        execute(make_run(s, task=TASK, control=FakeControl(elapsed=99)))


def test_a_budget_too_small_for_the_seed_fails_before_any_rollout() -> None:
    run = make_run(EngineSettings(max_total_rollouts=10), task=TASK, n_val=6, n_heldout=3)
    with pytest.raises(BudgetError) as info:
        execute(run)
    assert "max_total_rollouts" in str(info.value) and "raise" in str(info.value)
    assert run.evaluator.dispatched == 0 and run.sink.events == []


def test_preview_matches_what_a_run_does() -> None:
    s = EngineSettings(max_total_rollouts=100, minibatch_size=3)
    preview = preview_budget(s, val_size=10, train_size=20, heldout_size=5)
    # 100 - 10 heldout reserve - 10 seed = 80 over 16 per iteration
    assert preview.proposals == 5 and preview.limited_by == "max_total_rollouts"
    assert (
        preview_budget(EngineSettings(max_total_rollouts=30), val_size=10, train_size=5).proposals
        == 1
    )
    assert (
        preview_budget(
            EngineSettings(stop_after_no_improvement=3), val_size=5, train_size=5
        ).proposals
        is None
    )
    # a run with a proposer that never repeats itself makes at least the previewed proposals
    run = make_run(
        s, task=TASK, proposer=FeedbackProposer(noise=1.0), n_train=20, n_val=10, n_heldout=5
    )
    result = execute(run)
    assert result.budget["proposals"] >= preview.proposals


def test_settings_from_the_config_model() -> None:
    config = GepaSettings(max_total_rollouts=50, use_merge=True, rollout_submission_mode="async")
    s = EngineSettings.from_mapping(config.model_dump())
    assert s.max_total_rollouts == 50 and s.use_merge is True
    engine_fields = set(EngineSettings.__dataclass_fields__)
    config_fields = set(GepaSettings.model_fields) - {"rollout_submission_mode", "pipeline"}
    # [gepa] validation is the engine's validation_policy
    assert config_fields - {"validation"} <= engine_fields
    assert EngineSettings.from_mapping({"validation": "racing"}).validation_policy == "racing"
    with pytest.raises(ConfigError, match="candidate_selector"):
        EngineSettings(candidate_selector="random")
    with pytest.raises(ConfigError, match="est_cost_per_rollout_usd"):
        EngineSettings(max_cost_usd=1.0)
