"""`staleness_policy = "rebase"`: with iterations in flight, a child whose parent grew
meanwhile has its edit merged into the newer text, and the run stays sound (the
determinism, resume and budget properties of tests/engine/test_pipeline.py run under
this policy, the default)."""

from __future__ import annotations

from gepa_cli.engine.textmerge import merge_texts

from .test_pipeline import pipelined, run_with


def test_a_stale_child_is_merged_into_what_grew_from_its_parent() -> None:
    run, _ = run_with(pipelined(k=4), seed=0)
    rebased = run.sink.of("proposal.rebased")
    assert rebased, "no child was rebased"
    registered = {e["candidate_id"]: e for e in run.sink.of("candidate.registered")}
    accepted = {tuple(e["proposal_ids"]): e for e in run.sink.of("candidate.accepted")}
    proposed = {e["proposal_id"]: e["text"] for e in run.sink.of("proposal.completed")}
    checked = 0
    for event in rebased:
        entered = accepted.get(tuple(event["proposal_ids"]))
        if entered is None:
            continue  # a duplicate, or dropped by its validation
        child = registered[entered["candidate_id"]]
        assert entered["content_hash"] == child["content_hash"] == event["rebased_hash"]
        checked += 1
        onto = registered[event["onto"]]
        parent = registered[event["parent_id"]]
        assert child["parents"] == [event["onto"]]
        # the merged texts are the proposer's edit of the parent replayed on `onto`
        edited = dict(parent["texts"])
        for pid in event["proposal_ids"]:
            module = next(
                e["component"] for e in run.sink.of("proposal.completed") if e["proposal_id"] == pid
            )
            edited[module] = proposed[pid]
        assert child["texts"] == merge_texts(parent["texts"], edited, onto["texts"])
    assert checked


def test_the_full_policy_keeps_stale_children_as_they_are() -> None:
    run, _ = run_with(pipelined(k=4, staleness_policy="full"), seed=0)
    assert not run.sink.of("proposal.rebased")
    for event in run.sink.of("candidate.accepted"):
        assert event["candidate_id"]


def test_rebasing_keeps_overlapping_edits_that_full_leaves_on_siblings() -> None:
    """The point of the policy: on the same task and seed, K = 8 siblings of one parent
    under "full" end worse than the same run whose edits build on each other."""
    _, full = run_with(pipelined(k=8, staleness_policy="full"), seed=0)
    _, rebase = run_with(pipelined(k=8), seed=0)
    assert rebase.best_val_mean > full.best_val_mean
