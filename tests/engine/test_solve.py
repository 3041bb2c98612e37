"""The engine finds a known optimum with a proposer that reads the feedback."""

from __future__ import annotations

from gepa_cli.engine import EngineSettings

from .fakes import PhraseTask, execute, make_run


def test_hidden_phrase_is_found() -> None:
    task = PhraseTask(modules=("system_prompt",), tokens_per_example=3, n_tokens=8)
    run = make_run(
        EngineSettings(max_total_rollouts=400, stop_at_score=1.0),
        task=task,
        n_train=8,
        n_val=8,
        n_heldout=4,
    )
    result = execute(run)
    assert result.stopped_by == "score_threshold"
    assert result.seed_val_mean == 0.0
    assert result.best_val_mean == 1.0
    assert result.best_heldout_mean == 1.0 and result.seed_heldout_mean == 0.0
    words = set(result.best_texts["system_prompt"].split())
    needed = {t for i in range(8) for t in task.needed(f"val:{i}")}
    assert needed <= words
    # every accepted candidate improved on its parent where it was tested
    for data in run.sink.of("candidate.accepted"):
        assert data["child_sum"] > data["parent_sum"]


def test_two_modules_with_merge_reach_the_optimum() -> None:
    task = PhraseTask(modules=("planner", "writer"), tokens_per_example=3, n_tokens=9)
    # the optimum is learnable only when training feedback names every token validation needs
    train_needs = {t for i in range(8) for t in task.needed(f"train:{i}")}
    assert {t for i in range(8) for t in task.needed(f"val:{i}")} <= train_needs
    run = make_run(
        EngineSettings(max_total_rollouts=600, stop_at_score=1.0, use_merge=True),
        task=task,
        n_train=8,
        n_val=8,
    )
    result = execute(run)
    assert result.best_val_mean == 1.0
    assert result.stopped_by == "score_threshold"
