"""The quality suite's own machinery: its proposers, its greedy loop and its command line.

The engines themselves are measured by bench/quality_*.py; these tests check what the
bench adds, on a small Banking77-shaped task built here (no data folder needed).
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import pytest
from quality import banking77, engines, runner
from quality.core import Rollout, Task, run_to_end, use_cookbook
from quality.forgetful import ForgetfulProposer
from quality.learned_cues import CUES_PER_EXAMPLE, LearnedCuesProposer

use_cookbook("banking77")
from banking77_task.guidance import PromptDoc, cue_keys, seed_prompt  # noqa: E402

TOPICS = {
    "card_arrival": ["parcel", "courier", "delivery", "mailbox", "shipping"],
    "lost_card": ["stolen", "missing", "misplaced", "thief", "wallet"],
    "exchange_rate": ["euros", "dollars", "conversion", "forex", "currency"],
    "top_up": ["topup", "deposit", "reload", "credit", "fund"],
    "refund": ["merchant", "returned", "reimburse", "cancelled", "purchase"],
    "pin_blocked": ["locked", "attempts", "blocked", "pin", "wrongly"],
}
LABELS = tuple(TOPICS)


def small_task() -> Task:
    """Queries built from each label's topic words: learnable, not trivially."""
    rows: dict[str, banking77.Row] = {}
    splits: dict[str, list[str]] = {"train": [], "val": [], "heldout": []}
    for split, count in (("train", 8), ("val", 4), ("heldout", 4)):
        for label, words in TOPICS.items():
            for i in range(count):
                a, b = words[i % 5], words[(i * 2 + 1) % 5]
                query = f"my {a} and the {b} problem {split} {i}"
                example_id = f"{split}:{label}:{i}"
                rows[example_id] = banking77.Row(query, label)
                splits[split].append(example_id)

    def rollout(text: str, example_id: str) -> Rollout:
        row = rows[example_id]
        return banking77.scored(example_id, row, banking77.predict(text, row, LABELS))

    return Task(
        name="small",
        component="system_prompt",
        seed_text=str(seed_prompt(LABELS)),
        train_ids=tuple(splits["train"]),
        val_ids=tuple(splits["val"]),
        heldout_ids=tuple(splits["heldout"]),
        rollout=rollout,
    )


def records(task: Task, text: str, ids: list[str]) -> list[dict[str, Any]]:
    return [task.rollout(text, e).record() for e in ids]


def cues_by_label(text: str) -> dict[str, set[tuple[str, ...]]]:
    return {line.label: cue_keys(line.cues) for line in PromptDoc.parse(text).guidance()}


def test_learned_cues_adds_at_most_two_per_wrong_example_and_never_removes() -> None:
    task = small_task()
    propose = LearnedCuesProposer()
    text = task.seed_text
    for start in range(0, 48, 6):
        batch = list(task.train_ids[start : start + 6])
        shown = records(task, text, batch)
        wrong = sum(r["score"] < 1.0 for r in shown)
        child = propose(text, shown)
        before, after = cues_by_label(text), cues_by_label(child)
        for label, cues in before.items():
            assert cues <= after[label]  # nothing removed
        added = sum(len(after[label] - before.get(label, set())) for label in after)
        assert added <= CUES_PER_EXAMPLE * wrong
        text = child
    assert task.mean(text, task.heldout_ids) > task.mean(task.seed_text, task.heldout_ids)


def test_learned_cues_state_is_the_set_of_examples_shown() -> None:
    """Order and repeats of what was shown do not matter, so a resumed run can rebuild
    the state by folding the requests it recorded."""
    task = small_task()
    batches = [records(task, task.seed_text, list(task.train_ids[i : i + 5])) for i in (0, 5, 10)]
    request = records(task, task.seed_text, list(task.train_ids[15:21]))
    answers = set()
    for order in itertools.permutations(batches):
        proposer = LearnedCuesProposer.replayed([*order, order[0]])
        answers.add(proposer(task.seed_text, request))
    assert len(answers) == 1
    live = LearnedCuesProposer()
    for batch in batches:
        live.observe(batch)
    assert live(task.seed_text, request) in answers


def test_forgetful_proposer_forgets_only_unseen_labels_and_is_a_function_of_the_request() -> None:
    task = small_task()
    text = task.seed_text
    trainer = LearnedCuesProposer()
    for start in range(0, 48, 6):  # a text with cues on every label
        text = trainer(text, records(task, text, list(task.train_ids[start : start + 6])))
    shown_ids = [e for e in task.train_ids if ":refund:" in e][:3]
    shown = records(task, text, shown_ids)
    careless = careful = 0
    for salt in range(40):
        request_text = f"{text}\n# revision {salt}"
        inner = LearnedCuesProposer()
        expected = inner(request_text, shown)
        got = ForgetfulProposer(LearnedCuesProposer())(request_text, shown)
        again = ForgetfulProposer(LearnedCuesProposer())(request_text, shown)
        assert got == again
        if got == expected:
            careful += 1
            continue
        careless += 1
        mine, theirs = cues_by_label(got), cues_by_label(expected)
        seen = {r["inputs"]["label"] for r in shown} | {r["output"] for r in shown}
        for label in LABELS:
            if label in seen:
                assert mine[label] == theirs[label]
            else:
                assert len(mine[label]) == 1 and mine[label] <= theirs[label]
    assert careless and careful  # both kinds occur, at roughly the configured share


def test_greedy_loop_stays_in_budget_and_is_deterministic() -> None:
    task = small_task()
    settings = engines.ours_settings(120)
    outcomes = [
        engines.run_greedy(task, LearnedCuesProposer(), 120, 3, minibatch_size=6, settings=settings)
        for _ in range(2)
    ]
    first, second = outcomes
    assert first["evaluations"] <= 120
    assert first["best_text_sha256"] == second["best_text_sha256"]
    assert first["best_heldout"] == second["best_heldout"]
    assert first["candidates"] > 1  # it accepted something
    assert first["best_heldout"] > first["seed_heldout"]


def test_ours_default_runs_the_pair_within_budget() -> None:
    task = small_task()
    outcome = engines.run_ours(
        task, LearnedCuesProposer(), 200, 0, engines.ours_settings(200, minibatch_size=6)
    )
    assert outcome["evaluations"] <= 200
    assert outcome["heldout_evaluations"] > 0
    assert outcome["best_heldout"] >= 0.0


def test_variant_spec_is_checked() -> None:
    assert runner.parse_variant('chain={"validation": "full"}') == (
        "chain",
        {"validation": "full"},
    )
    for bad in ("chain", "full={}", "x=[1]", "x={not json"):
        with pytest.raises(argparse.ArgumentTypeError):
            runner.parse_variant(bad)
    with pytest.raises(SystemExit, match="--variant bad"):
        runner.check_variants([("bad", {"validation": "no-such-policy"})])


def test_run_to_end_refuses_a_rollout_that_waits() -> None:
    async def offline() -> int:
        return 7

    class Pending:  # what awaiting a socket or a timer does: suspend
        def __await__(self) -> Any:
            yield None

    async def waits() -> None:
        await Pending()

    assert run_to_end(offline()) == 7
    with pytest.raises(RuntimeError, match="waited on IO"):
        run_to_end(waits())


def test_held_on_validation_counts_children_that_hold_and_examples_that_changed() -> None:
    parent = {"v1": 1.0, "v2": 0.0, "v3": 0.0}
    better = {"v1": 1.0, "v2": 1.0, "v3": 0.0}  # holds, 1 example changed
    worse = {"v1": 0.0, "v2": 1.0, "v3": 0.0}  # same mean: does not hold, 2 changed
    assert engines.held_on_validation([(better, parent), (worse, parent)]) == {
        "children": 2,
        "held": 1,
        "changed": 3,
    }
    task = small_task()
    outcome = engines.run_ours(
        task,
        LearnedCuesProposer(),
        300,
        0,
        engines.ours_settings(300, minibatch_size=6, validation="full", minibatch_schedule="fixed"),
    )
    held = outcome["held_on_validation"]
    assert held["children"] == outcome["candidates"] - 1  # every child, from the event feed
    assert 0 < held["changed"] <= held["children"] * len(task.val_ids)
