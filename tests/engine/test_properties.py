"""Properties that must hold for any budget, data size and seed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gepa_cli.engine import EngineSettings
from gepa_cli.engine.frontier import (
    FrontierIndex,
    compute_frontier,
    front_counts,
    remove_dominated,
)
from gepa_cli.engine.state import Candidate

from .fakes import FeedbackProposer, PhraseTask, execute, make_run

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _candidates(score_rows: list[list[float]]) -> list[Candidate]:
    return [
        Candidate(
            id=f"c{i:04d}",
            texts={"m": str(i)},
            content_hash=str(i),
            parents=[],
            origin="seed",
            iteration=0,
            val_scores={f"val:{j}": s for j, s in enumerate(row)},
        )
        for i, row in enumerate(score_rows)
    ]


score = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])


@FAST
@given(
    st.integers(1, 6).flatmap(
        lambda width: st.lists(
            st.lists(score, min_size=width, max_size=width), min_size=1, max_size=8
        )
    )
)
def test_frontier_members_are_best_and_selection_drops_dominated(rows: list[list[float]]) -> None:
    candidates = _candidates(rows)
    frontier, best = compute_frontier(candidates, "instance")
    by_id = {c.id: c for c in candidates}
    for key, members in frontier.items():
        top = max(c.val_scores[key] for c in candidates)
        assert best[key] == top
        assert members == sorted(c.id for c in candidates if c.val_scores[key] == top)
    means = {c.id: c.val_mean for c in candidates}
    kept = remove_dominated(frontier, means)
    survivors = set(front_counts(kept))
    # every front keeps at least one member
    assert all(kept[key] for key in frontier)
    # no survivor is dominated by the other survivors: each holds a front alone among them
    for cid in survivors:
        mine = [ids for ids in frontier.values() if cid in ids]
        assert any(not (set(ids) & survivors - {cid}) for ids in mine), (cid, kept)
    # a candidate scoring <= another everywhere (and < somewhere) never survives
    for a in candidates:
        for b in candidates:
            keys = a.val_scores
            if all(a.val_scores[k] <= b.val_scores[k] for k in keys) and any(
                a.val_scores[k] < b.val_scores[k] for k in keys
            ):
                assert a.id not in survivors
    assert survivors <= set(by_id)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 90),
    n_val=st.integers(1, 8),
    n_train=st.integers(1, 8),
    n_heldout=st.integers(0, 4),
    minibatch=st.integers(1, 5),
    merge=st.booleans(),
    selector=st.sampled_from(["pareto", "current_best", "epsilon_greedy", "top_k_pareto"]),
    components=st.sampled_from(["round_robin", "all"]),
    seed=st.integers(0, 3),
)
def test_counted_rollouts_never_exceed_max_total_rollouts(
    total: int,
    n_val: int,
    n_train: int,
    n_heldout: int,
    minibatch: int,
    merge: bool,
    selector: str,
    components: str,
    seed: int,
) -> None:
    from gepa_cli.errors import BudgetError

    s = EngineSettings(
        max_total_rollouts=total,
        minibatch_size=minibatch,
        use_merge=merge,
        candidate_selector=selector,
        component_selector=components,
        merge_subsample_size=3,
    )
    task = PhraseTask(modules=("a", "b"), forbidden_per_example=2, n_tokens=10)
    run = make_run(
        s,
        task=task,
        proposer=FeedbackProposer(noise=0.3),
        n_train=n_train,
        n_val=n_val,
        n_heldout=n_heldout,
        rng_seed=seed,
    )
    try:
        result = execute(run)
    except BudgetError:
        assert run.evaluator.dispatched == 0
        assert not run.sink.events
        return
    assert run.evaluator.dispatched == result.budget["rollouts"]["total"] <= total
    for data in [d for t, d in run.sink.events if t == "budget.updated"]:
        assert data["rollouts"]["total"] <= total


@FAST
@given(seed=st.integers(0, 10_000), merge=st.booleans())
def test_same_seed_same_run(seed: int, merge: bool) -> None:
    s = EngineSettings(max_total_rollouts=120, use_merge=merge)
    task = PhraseTask(modules=("a", "b"), forbidden_per_example=2, n_tokens=10)
    feeds = []
    for _ in range(2):
        run = make_run(
            s, task=task, proposer=FeedbackProposer(noise=0.3), rng_seed=seed, n_heldout=2
        )
        execute(run)
        feeds.append(run.sink.events)
    assert feeds[0] == feeds[1]


def _remove_dominated_by_restarts(
    frontier: dict[str, list[str]], means: dict[str, float]
) -> dict[str, list[str]]:
    """The rule as first written: remove the weakest removable candidate, then start
    over. `remove_dominated` must give exactly this, in one pass."""
    fronts = {key: set(ids) for key, ids in frontier.items()}
    order = sorted({c for ids in fronts.values() for c in ids}, key=lambda c: (means[c], c))
    alive = set(order)
    changed = True
    while changed:
        changed = False
        for cid in order:
            if cid not in alive:
                continue
            mine = [front for front in fronts.values() if cid in front]
            if all(any(o != cid and o in alive for o in front) for front in mine):
                alive.discard(cid)
                changed = True
                break
    return {key: sorted(c for c in ids if c in alive) for key, ids in fronts.items()}


@FAST
@given(
    st.integers(1, 8).flatmap(
        lambda width: st.lists(
            st.lists(score, min_size=width, max_size=width), min_size=1, max_size=12
        )
    )
)
def test_one_pass_removal_equals_removal_with_restarts(rows: list[list[float]]) -> None:
    candidates = _candidates(rows)
    frontier, _ = compute_frontier(candidates, "instance")
    means = {c.id: c.val_mean for c in candidates}
    assert remove_dominated(frontier, means) == _remove_dominated_by_restarts(frontier, means)


@FAST
@given(st.lists(st.lists(score, min_size=4, max_size=4), min_size=1, max_size=10))
def test_the_frontier_kept_incrementally_equals_the_frontier_recomputed(
    rows: list[list[float]],
) -> None:
    candidates = _candidates(rows)
    for kind in ("instance", "hybrid"):
        index = FrontierIndex(kind)
        for end in range(1, len(candidates) + 1):
            index.sync(candidates[:end])
            assert index.frontier() == compute_frontier(candidates[:end], kind)


def _objective_candidates(rows: list[tuple[float, float]]) -> list[Candidate]:
    return [
        Candidate(
            id=f"c{i:04d}",
            texts={"m": str(i)},
            content_hash=str(i),
            parents=[],
            origin="seed",
            iteration=0,
            val_scores={"val:0": (p + r) / 2},
            val_objectives={"precision": p, "recall": r},
        )
        for i, (p, r) in enumerate(rows)
    ]


@FAST
@given(st.lists(st.tuples(score, score), min_size=1, max_size=12))
def test_the_objective_frontier_holds_no_dominated_member(rows: list[tuple[float, float]]) -> None:
    candidates = _objective_candidates(rows)
    for kind in ("objective", "hybrid"):
        frontier, best = compute_frontier(candidates, kind)
        on_objectives = {
            cid for key, ids in frontier.items() if key.startswith("objective:") for cid in ids
        }
        vectors = {c.id: c.val_objectives for c in candidates}
        for cid in on_objectives:
            mine = vectors[cid]
            assert not any(
                all(o[n] >= mine[n] for n in mine) and any(o[n] > mine[n] for n in mine)
                for other, o in vectors.items()
                if other != cid
            ), (cid, rows)
        # every objective key still has a member at its best score
        for name in ("precision", "recall"):
            key = "objective:" + name
            assert frontier[key] and all(vectors[c][name] == best[key] for c in frontier[key])
