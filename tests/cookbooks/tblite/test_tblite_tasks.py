"""Every task's verifier passes on its reference solution and fails on the untouched
workspace; the suite has the size and spread the cookbook promises."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from tblite_task.sandbox import Limits, Sandbox
from tblite_task.tasks import CATEGORIES, Task, TaskError, load_tasks, parse_task
from tblite_task.verify import Verdict, compare_text, verify

TASKS = load_tasks()


def test_suite_size_categories_and_splits() -> None:
    assert len(TASKS) >= 40
    assert set(Counter(t.category for t in TASKS)) == set(CATEGORIES)
    splits = Counter(t.split for t in TASKS)
    assert splits["train"] >= 20 and splits["val"] >= 8 and splits["heldout"] >= 12
    assert len({t.task_id for t in TASKS}) == len(TASKS)


def test_rows_hide_the_checks_and_the_solution() -> None:
    for task in TASKS:
        row = task.row_fields()
        assert set(row) == {"task_id", "category", "instruction"}
        assert task.solution not in row["instruction"]


async def _verdicts() -> dict[str, tuple[Verdict, Verdict]]:
    """Per task: the verdict on the untouched workspace, then after the solution (the
    verifier changes nothing, so both run in one sandbox)."""
    sem = asyncio.Semaphore(4)

    async def one(task: Task) -> tuple[str, tuple[Verdict, Verdict]]:
        async with sem, Sandbox(task.files, Limits(), task.executable) as box:
            untouched = await verify(task, box)
            result = await box.run(task.solution, agent=False)
            assert result.exit_code == 0, (task.task_id, result.output)
            return task.task_id, (untouched, await verify(task, box))

    return dict(await asyncio.gather(*(one(t) for t in TASKS)))


def test_reference_solutions_pass_and_untouched_workspaces_fail() -> None:
    verdicts = asyncio.run(_verdicts())
    failing = {
        k: [(c.name, c.detail) for c in solved.failed]
        for k, (_, solved) in verdicts.items()
        if not solved.passed
    }
    assert not failing, failing
    passing = sorted(k for k, (untouched, _) in verdicts.items() if untouched.passed)
    assert not passing, passing
    # a failed verdict names its failed checks with a reason
    for untouched, _ in verdicts.values():
        assert all(c.name and c.detail for c in untouched.failed)


def test_compare_text_says_what_differs() -> None:
    assert compare_text("a\nb\n", "a\nb") == ""
    assert "line 2" in compare_text("a\nc\n", "a\nb\n")
    assert "missing 'b'" in compare_text("a\n", "a\nb\n")
    assert compare_text("b\na\n", "a\nb\n", unordered=True) == ""


def test_malformed_task_files_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('category = "text"\nsplit = "test"\ninstruction = "x"\nsolution = "y"\n')
    with pytest.raises(TaskError, match="split 'test'"):
        parse_task(bad)
    bad.write_text(
        'category = "text"\nsplit = "train"\ninstruction = "x"\nsolution = "y"\n'
        '[[checks]]\nname = "c"\nkind = "file"\n'
    )
    with pytest.raises(TaskError, match="needs a path"):
        parse_task(bad)
