"""The offline proposer learns from the reflective dataset it is shown, and nothing else."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tblite_task import SEED_PLAYBOOK
from tblite_task.playbook import HABIT_TEXT, Playbook
from tblite_task.propose import MAX_EDITS, propose_text

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "tblite"


def _record(instruction: str, transcript: str = "", feedback: str = "FAIL", score: float = 0.0):  # type: ignore[no-untyped-def]
    return {
        "inputs": {"instruction": instruction},
        "output": transcript,
        "score": score,
        "feedback": feedback,
    }


def test_it_never_reads_the_tasks_or_their_verifiers() -> None:
    tree = ast.parse((COOKBOOK / "tblite_task" / "propose.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {
        "__future__",
        "collections.abc",
        "dataclasses",
        "typing",
        "agent",
        "playbook",
    }


def test_a_missing_input_teaches_listing_the_files_first() -> None:
    transcript = (
        "$ cat worker.log | grep -F -- x > out.txt\n"
        "  cat: worker.log: No such file or directory\n  [exit 1]"
    )
    new = propose_text(
        SEED_PLAYBOOK, [_record('Lines of `worker.log` containing "x" into `out.txt`.', transcript)]
    )
    assert "look" in Playbook.parse(new).habits
    assert HABIT_TEXT["look"] in new


def test_a_name_split_at_a_space_teaches_quoting() -> None:
    transcript = (
        "$ cat my notes.txt | wc -l > n.txt\n  cat: my: No such file or directory\n"
        "  cat: notes.txt: No such file or directory"
    )
    new = propose_text(
        SEED_PLAYBOOK,
        [_record("How many lines does `my notes.txt` have? Write it to `n.txt`.", transcript)],
    )
    assert Playbook.parse(new).habits == {"quote"}


def test_the_tasks_wording_brings_the_missing_recipe() -> None:
    new = propose_text(SEED_PLAYBOOK, [_record('Keep the lines of `a` that contain "x", in `b`.')])
    added = [r for r in Playbook.parse(new).recipes if r.phrases == ("contain",)]
    assert added and added[0].stage == "filter"
    # a wrong recipe for the same words is corrected, not duplicated
    fixed = propose_text(new, [_record("Drop the unique lines of `a` into `b`.")])
    unique = [r for r in Playbook.parse(fixed).recipes if "unique" in r.phrases]
    assert len(unique) == 1 and unique[0].text == "sort -u"


def test_an_unknown_program_error_brings_its_fix() -> None:
    transcript = (
        "$ python3 x.py\n"
        "  NameError: name 'totl' is not defined. Did you mean: 'total'?\n  [exit 1]"
    )
    book = SEED_PLAYBOOK.replace("## Habits\n", f"## Habits\n\n- {HABIT_TEXT['try']}\n")
    new = propose_text(book, [_record("Make `python3 x.py` work.", transcript)])
    fixes = [r for r in Playbook.parse(new).recipes if r.on_error]
    assert [r.phrases for r in fixes] == [("Did you mean",)]


def test_passing_examples_teach_nothing_and_edits_are_capped() -> None:
    passed = _record('Lines of `a` that contain "x" into `b`.', score=1.0)
    assert propose_text(SEED_PLAYBOOK, [passed]) == SEED_PLAYBOOK
    many = _record(
        'Drop the duplicate lines, the first 3, that contain "x", ignoring case, sorted '
        'from largest to smallest, from `a` into `b`, the sum of "y".'
    )
    new = propose_text(SEED_PLAYBOOK, [many])
    assert (
        len(Playbook.parse(new).recipes) - len(Playbook.parse(SEED_PLAYBOOK).recipes) == MAX_EDITS
    )


def test_the_command_prints_one_fenced_block_and_rejects_bad_input() -> None:
    request = {
        "current_text": SEED_PLAYBOOK,
        "reflective_dataset": [_record('Lines that contain "x" of `a` into `b`.')],
    }
    cmd = [sys.executable, "-m", "tblite_task.propose"]
    out = subprocess.run(
        cmd, input=json.dumps(request), capture_output=True, text=True, cwd=COOKBOOK
    )
    assert out.returncode == 0 and out.stdout.startswith("```\n") and out.stdout.endswith("```\n")
    assert '"contain" -> filter' in out.stdout
    bad = subprocess.run(cmd, input="not json", capture_output=True, text=True, cwd=COOKBOOK)
    assert bad.returncode == 2 and "JSON reflection request" in bad.stderr
