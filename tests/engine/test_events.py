"""The event feed alone rebuilds the run's candidates, scores, frontier and budget."""

from __future__ import annotations

from gepa_cli.engine import EVENT_TYPES, EngineSettings
from gepa_cli.engine.frontier import compute_frontier
from gepa_cli.engine.state import Candidate

from .fakes import FeedbackProposer, PhraseTask, execute, make_run


def test_feed_rebuilds_candidates_scores_frontier_and_budget() -> None:
    task = PhraseTask(
        modules=("a", "b"), forbidden_per_example=2, n_tokens=10, with_objectives=True
    )
    s = EngineSettings(max_total_rollouts=250, use_merge=True, frontier_type="hybrid")
    run = make_run(s, task=task, proposer=FeedbackProposer(noise=0.3), n_heldout=2)
    result = execute(run)
    assert set(run.sink.types()) <= set(EVENT_TYPES)
    rebuilt: dict[str, Candidate] = {}
    for kind, data in run.sink.events:
        if kind == "candidate.registered":
            rebuilt[data["candidate_id"]] = Candidate(
                id=data["candidate_id"], texts=data["texts"], content_hash=data["content_hash"],
                parents=data["parents"], origin=data["origin"], iteration=data["iteration"],
            )  # fmt: skip
        elif kind == "evaluation.completed" and data["purpose"] == "validation":
            for row in data["results"]:
                rebuilt[data["eval_id"]].val_scores[row["example_id"]] = row["score"]
        elif kind == "candidate.validated":
            rebuilt[data["candidate_id"]].val_objectives = data["objective_means"]
    final = result.state.candidates
    assert [c.id for c in final] == list(rebuilt)
    for original in final:
        copy = rebuilt[original.id]
        assert (copy.texts, copy.parents, copy.origin) == (
            original.texts,
            original.parents,
            original.origin,
        )
        assert copy.val_scores == original.val_scores
    frontier, _ = compute_frontier(list(rebuilt.values()), "hybrid")
    last = run.sink.of("frontier.updated")[-1]
    assert last["frontier"] == frontier
    assert any(k.startswith("objective:") for k in frontier)
    assert last["best_candidate_id"] == result.best_candidate_id
    finished = run.sink.of("run.finished")[-1]
    assert finished["budget"] == result.budget
    counted = sum(d["rollouts"] for d in run.sink.of("evaluation.completed"))
    assert counted == result.budget["rollouts"]["total"]
    # a checkpoint event's next_event_index is where a resumed feed continues
    for index, (kind, data) in enumerate(run.sink.events):
        if kind == "checkpoint":
            assert data["next_event_index"] == index + 1


def test_every_selector_and_frontier_type_runs() -> None:
    task = PhraseTask(
        modules=("a", "b"), forbidden_per_example=2, n_tokens=10, with_objectives=True
    )
    for selector in ("pareto", "current_best", "epsilon_greedy", "top_k_pareto"):
        for frontier_type in ("instance", "objective", "hybrid"):
            s = EngineSettings(max_total_rollouts=120, candidate_selector=selector,
                               frontier_type=frontier_type, acceptance="improvement_or_equal",
                               component_selector="all")  # fmt: skip
            result = execute(make_run(s, task=task, proposer=FeedbackProposer(noise=0.2)))
            assert result.best_val_mean >= result.seed_val_mean
            assert result.budget["rollouts"]["total"] <= 120


def test_every_event_type_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    missing = [kind for kind in EVENT_TYPES if f"`{kind}`" not in doc]
    assert missing == []
