"""The offline agent does what the playbook says, and only that."""

from __future__ import annotations

import pytest
from tblite_task import SEED_PLAYBOOK
from tblite_task.agent import TaskView, resolve
from tblite_task.episode import EpisodeResult, run_episode
from tblite_task.playbook import HABIT_TEXT, Playbook, habit_of, phrase_position, words
from tblite_task.smoke import Quiet
from tblite_task.tasks import by_id


async def _run(playbook: str, task_id: str) -> EpisodeResult:
    return await run_episode(playbook, by_id(task_id).row_fields(), "offline", Quiet())


def _with(text: str, section: str, *lines: str) -> str:
    head = f"## {section}\n"
    assert head in text
    return text.replace(head, head + "\n" + "\n".join(lines) + "\n", 1)


def test_the_seed_playbook_parses() -> None:
    book = Playbook.parse(SEED_PLAYBOOK)
    assert book.habits == set()
    assert [r.phrases[0] for r in book.recipes][:2] == ["containing", "sorted"]


def test_habits_are_recognized_by_their_key_words() -> None:
    for habit, sentence in HABIT_TEXT.items():
        assert habit_of(sentence) == habit
    assert habit_of("- Always list the files in the folder before anything else.") == "look"
    assert habit_of("- Be careful.") is None
    # a habit line outside the Habits section is prose, not a habit
    assert Playbook.parse(f"# Notes\n- {HABIT_TEXT['look']}\n").habits == set()


def test_phrases_match_by_word_prefix() -> None:
    prose = words("Write the lines that contain it, sorted")
    assert phrase_position("contain", prose) == 4
    assert phrase_position("sort", prose) == 6
    assert phrase_position("containing", prose) == -1


def test_task_operands_and_roles() -> None:
    view = TaskView.parse('Into `paid.txt`, write how many lines of `orders.txt` contain "paid".')
    assert view.paths == ["paid.txt", "orders.txt"] and view.texts == ["paid"]
    # without a listing the agent guesses first-read, last-written; with one it knows
    assert resolve(view, None).src == "paid.txt"
    plan = resolve(view, ["orders.txt"])
    assert (plan.src, plan.dst) == ("orders.txt", "paid.txt")
    found = resolve(TaskView.parse("Read `w.log` into `x.txt`."), ["var/log/w.log"])
    assert found.src == "var/log/w.log"
    assert TaskView.parse("the second column, `a.csv`").number == 2
    assert TaskView.parse("Rename each `.jpeg` in `photos/` to `.jpg`.").exts == [".jpeg", ".jpg"]
    assert TaskView.parse("Make `./run.sh` work").commands == ["./run.sh"]


async def test_the_seed_solves_a_task_it_has_a_recipe_for() -> None:
    result = await _run(SEED_PLAYBOOK, "text-errors")
    assert result.passed
    assert [s.command for s in result.steps] == ["cat app.log | grep -F -- ERROR > errors.txt"]


async def test_without_a_recipe_the_agent_says_so_and_stops() -> None:
    no_recipe = SEED_PLAYBOOK.replace('- "containing" -> filter: grep -F -- {text}\n', "")
    result = await _run(no_recipe, "text-errors")
    assert not result.passed and result.steps == []
    assert "no recipe in the playbook matches this task" in result.feedback()


@pytest.mark.parametrize(
    ("task_id", "habit"),
    [
        ("text-find-the-log", "look"),
        ("text-spaces-in-name", "quote"),
        ("text-output-folder", "mkdir"),
    ],
)
async def test_a_habit_line_changes_what_the_agent_does(task_id: str, habit: str) -> None:
    seed = await _run(SEED_PLAYBOOK, task_id)
    assert not seed.passed
    taught = await _run(_with(SEED_PLAYBOOK, "Habits", f"- {HABIT_TEXT[habit]}"), task_id)
    assert taught.passed, taught.feedback()
    assert [s.command for s in taught.steps] != [s.command for s in seed.steps]


async def test_running_the_program_and_fixing_its_errors() -> None:
    book = _with(SEED_PLAYBOOK, "Habits", f"- {HABIT_TEXT['try']}")
    tried = await _run(book, "code-name-typo-calc")
    assert not tried.passed
    assert tried.steps[0].command == "python3 report.py" and "Did you mean" in tried.steps[0].output
    fix = "- error \"Did you mean\" -> run: sed -i 's/\\b{name}\\b/{suggestion}/g' {file}"
    fixed = await _run(_with(book, "Recipes", fix), "code-name-typo-calc")
    assert fixed.passed, fixed.feedback()
    assert fixed.steps[1].command == "sed -i 's/\\btotl\\b/total/g' calc.py"
