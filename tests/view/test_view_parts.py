"""The parts of the report that need no browser: the feed facts it plots, the lineage
layout, the word diff, and the JSON that goes into the page."""

from __future__ import annotations

import orjson
from view_runs import Run, SmallRun

from gepa_cli.artifacts.replay import ReplayCandidate, replay_events
from gepa_cli.view.figures import outcome_kind, pareto_ids
from gepa_cli.view.lineage import tree_layout
from gepa_cli.view.page import inline_diff, script_json


def test_the_replay_knows_when_each_candidate_was_validated_and_why_children_settled(
    merges: Run,
) -> None:
    replay = replay_events(merges.path / "events.jsonl")
    events = merges.ledger("events.jsonl")
    spent, validated_at, scores = 0, {}, {}
    for event in events:
        data = event["data"]
        if event["type"] in ("evaluation.completed", "evaluation.discarded"):
            spent += data["rollouts"]
        if event["type"] == "evaluation.completed" and data["purpose"] == "validation":
            scores[data["eval_id"]] = {r["example_id"]: r["score"] for r in data["results"]}
        elif event["type"] == "candidate.validated":
            validated_at[data["candidate_id"]] = spent
    assert replay.rollouts_spent == spent == merges.manifest["budget"]["rollouts"]["total"]
    for candidate in replay.candidates:
        assert candidate.validated_at == validated_at[candidate.id]
        assert candidate.val_scores == scores[candidate.id]
        assert len(candidate.val_scores) == candidate.val_count
    # the best changes are the frontier updates that changed the best
    bests = [
        (e["data"]["best_candidate_id"], e["data"]["best_val_mean"])
        for e in events
        if e["type"] == "frontier.updated"
    ]
    changes = [b for i, b in enumerate(bests) if i == 0 or b != bests[i - 1]]
    assert [(b.candidate_id, b.val_mean) for b in replay.best_history] == changes
    # one decision per settled child or merge, each saying why
    settled = [
        e
        for e in events
        if e["type"].startswith(("candidate.", "merge."))
        and e["type"].split(".")[1] in ("accepted", "rejected", "duplicate")
    ]
    assert [d.type for d in replay.decisions] == [e["type"] for e in settled]
    proposals = {p["proposal_id"]: p["outcome"] for p in merges.ledger("proposals.jsonl")}
    for decision in replay.decisions:
        if decision.type.startswith("candidate."):
            assert all(
                proposals[pid].startswith(decision.type.split(".")[1]) for pid in decision.ids
            )
        assert decision.verdict


def test_the_replay_json_carries_the_new_facts(small: SmallRun) -> None:
    payload = replay_events(small.path / "events.jsonl").to_dict()
    decoded = orjson.loads(orjson.dumps(payload))
    assert decoded["rollouts_spent"] == small.manifest["budget"]["rollouts"]["total"]
    assert decoded["best_history"][-1]["candidate_id"] == small.manifest["best_candidate"]["id"]
    assert all("val_scores" in c and "validated_at" in c for c in decoded["candidates"])


def _candidate(cid: str, parents: list[str], origin: str = "reflection") -> ReplayCandidate:
    return ReplayCandidate(cid, parents, origin, "hash", {"m": cid})


def test_the_lineage_layout_is_a_tree_whose_branches_do_not_cross() -> None:
    candidates = [
        _candidate("c0", [], "seed"),
        _candidate("c1", ["c0"]),
        _candidate("c2", ["c1"]),
        _candidate("c3", ["c0"]),
        _candidate("c4", ["c1"]),
        _candidate("c5", ["c2", "c3"], "merge"),
    ]
    nodes, edges = tree_layout(candidates)
    assert {cid: n.generation for cid, n in nodes.items()} == {
        "c0": 0, "c1": 1, "c2": 2, "c3": 1, "c4": 2, "c5": 3,
    }  # fmt: skip
    # leaves take rows in walk order; parents sit between their first and last child
    assert nodes["c5"].row == 0 and nodes["c4"].row == 1 and nodes["c3"].row == 2
    assert nodes["c2"].row == nodes["c5"].row
    assert nodes["c1"].row == (nodes["c2"].row + nodes["c4"].row) / 2
    assert nodes["c0"].row == (nodes["c1"].row + nodes["c3"].row) / 2
    merges = sorted((e.parent_id, e.child_id) for e in edges if e.kind == "merge")
    assert merges == [("c2", "c5"), ("c3", "c5")]
    assert len(edges) == 6


def test_a_long_chain_lays_out_without_recursion() -> None:
    chain = [_candidate("c0", [], "seed")] + [
        _candidate(f"c{i}", [f"c{i - 1}"]) for i in range(1, 5000)
    ]
    nodes, _ = tree_layout(chain)
    assert nodes["c4999"].generation == 4999


def test_the_word_diff_groups_a_change_and_keeps_both_texts() -> None:
    old, new = "Answer with clarity. Be brief.", "Answer with care and clarity. Be very brief!"
    pieces = inline_diff(old, new)
    assert "".join(t for op, t in pieces if op != "+") == old
    assert "".join(t for op, t in pieces if op != "-") == new
    assert ("+", " care and") in pieces and ("-", ".") in pieces
    assert inline_diff("same", "same") == [("=", "same")]


def test_page_json_cannot_close_its_script_element() -> None:
    hostile = {"text": "</script><script>alert(1)</script> & \u2028"}
    encoded = script_json(hostile)
    assert "</" not in encoded and "<" not in encoded and "&" not in encoded
    assert orjson.loads(encoded) == hostile


def test_outcomes_and_the_objective_frontier() -> None:
    assert [outcome_kind(o) for o in ("accepted", "duplicate: rejected_before", "error: x")] == [
        "accepted",
        "duplicate",
        "failed",
    ]
    assert outcome_kind("rejection: unchanged text") == "failed"
    assert outcome_kind("extended: chain of 3 edits") == "extended"
    assert outcome_kind("unvalidated: no room in the budget (max_total_rollouts)") == "dropped"
    points = {"a": (1.0, 0.0), "b": (0.0, 1.0), "c": (0.5, 0.5), "d": (0.4, 0.4), "e": (1.0, 0.0)}
    assert pareto_ids(points) == ["a", "b", "c", "e"]
