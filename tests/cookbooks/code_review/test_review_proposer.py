"""The offline proposer edits the checklist from the feedback it is shown, and only that."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from code_review_task.data import load
from code_review_task.prompt import SEED_CHECKLIST
from code_review_task.propose import MAX_ADDED, propose_text, read_feedback
from code_review_task.reviewer import answer
from code_review_task.task import grade
from code_review_task.wording import items

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "code_review"


def _records(checklist: str, ids: list[str]) -> list[dict[str, Any]]:
    ds = load()
    out = []
    for eid in ids:
        ex = ds.by_id(eid)
        assert ex is not None
        o = grade(checklist, ex, answer(checklist, ex.diff))
        # only what the engine passes on: inputs, output, score, feedback
        out.append(
            {
                "example_id": eid,
                "inputs": ex.row(),
                "output": o.output,
                "score": o.reward,
                "feedback": o.feedback,
            }
        )
    return out


def test_adds_items_for_missed_categories() -> None:
    # nothing in the seed looks for shell commands or secrets: misses outweigh the noise
    records = _records(SEED_CHECKLIST, ["py-ping-host-tool", "go-admin-token"])
    ev = read_feedback(records)
    assert {c for c, _ in ev.missed} == {"command-injection", "hardcoded-secret"}
    assert sum(ev.noise.values()) <= len(ev.missed)
    new = propose_text(SEED_CHECKLIST, records)
    added = [i for i in items(new) if i not in items(SEED_CHECKLIST)]
    assert [i.category for i in added] == ["command-injection", "hardcoded-secret"]
    assert len(added) <= MAX_ADDED
    # the new items are the missed defects' descriptions, so they now catch them
    assert (
        grade(
            new,
            load().by_id("py-ping-host-tool"),
            answer(new, load().by_id("py-ping-host-tool").diff),
        ).objectives["recall"]
        == 1.0
    )  # type: ignore[union-attr]


def test_narrows_the_noisiest_item_to_what_it_found() -> None:
    # "Check error handling." fires on every error line: noise outweighs the misses
    records = _records(
        SEED_CHECKLIST, ["go-config-unmarshal", "go-healthz", "go-graceful-shutdown"]
    )
    ev = read_feedback(records)
    noisiest = max(ev.noise, key=lambda n: ev.noise[n])
    assert items(SEED_CHECKLIST)[noisiest - 1].text == "Check error handling."
    new = propose_text(SEED_CHECKLIST, records)
    assert "- Check error handling." not in new
    assert "- unchecked-error: error from json.Unmarshal is ignored" in new
    # one edit per proposal: the other items are untouched, nothing was added
    assert len(items(new)) == len(items(SEED_CHECKLIST))
    # and the narrowed checklist is quieter on the same diffs
    before = sum(r["score"] for r in records)
    after = sum(
        r["score"]
        for r in _records(new, ["go-config-unmarshal", "go-healthz", "go-graceful-shutdown"])
    )
    assert after > before


def test_drops_an_item_that_only_made_noise() -> None:
    checklist = "- Check defaults and settings.\n- sql-injection: SQL built by string formatting\n"
    records = _records(checklist, ["py-feature-flags", "py-smtp-sender"])
    assert all(r["score"] < 1 for r in records)
    assert propose_text(checklist, records) == "- sql-injection: SQL built by string formatting\n"


def test_nothing_to_fix_leaves_the_text_unchanged() -> None:
    checklist = "- sql-injection: SQL built by string formatting\n"
    records = _records(checklist, ["py-users-find-by-email", "go-healthz"])
    assert all(r["score"] == 1.0 for r in records)
    assert propose_text(checklist, records) == checklist


def test_reads_the_feedback_not_the_inputs() -> None:
    records = _records(SEED_CHECKLIST, ["py-ping-host-tool"])
    blind = [{"feedback": r["feedback"], "score": r["score"]} for r in records]
    assert propose_text(SEED_CHECKLIST, blind) == propose_text(SEED_CHECKLIST, records)


def _run(payload: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "code_review_task.propose"],
        input=payload,
        capture_output=True,
        text=True,
        cwd=COOKBOOK,
        timeout=60,
        check=False,
    )


def test_command_prints_the_new_checklist_in_one_fenced_block() -> None:
    records = _records(SEED_CHECKLIST, ["py-ping-host-tool"])
    request = {
        "prompt": "ignored",
        "candidate": {"checklist": SEED_CHECKLIST},
        "component": "checklist",
        "current_text": SEED_CHECKLIST,
        "reflective_dataset": records,
    }
    done = _run(json.dumps(request))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"```\n{propose_text(SEED_CHECKLIST, records).rstrip()}\n```\n"


def test_command_refuses_bad_input_with_one_line() -> None:
    done = _run("not json")
    assert done.returncode == 2 and 'input = "json"' in done.stderr
    done = _run(json.dumps({"reflective_dataset": []}))
    assert done.returncode == 2 and "no current_text" in done.stderr
