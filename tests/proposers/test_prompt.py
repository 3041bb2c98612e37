"""The reflection prompt: rendering, template validation, reading the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gepa_cli.config.models import ProposerConfig
from gepa_cli.errors import ConfigError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.proposers import (
    DEFAULT_TEMPLATE,
    build_proposer,
    load_template,
    parse_answer,
    render_prompt,
)

from .support import CURRENT, make_request


def test_default_template_has_both_placeholders_once() -> None:
    assert DEFAULT_TEMPLATE.count("{current_text}") == 1
    assert DEFAULT_TEMPLATE.count("{examples}") == 1


def test_rendered_prompt_shows_text_and_numbered_examples() -> None:
    request = make_request()
    prompt = render_prompt(DEFAULT_TEMPLATE, request.current_text, request.records)
    assert "{current_text}" not in prompt and "{examples}" not in prompt
    assert f"```\n{CURRENT}\n```" in prompt
    assert "## Example 1 (id: train-3, score: 1)" in prompt
    assert "## Example 2 (id: train-7, score: 0)" in prompt
    assert '"text": "How do I top up by bank transfer?"' in prompt
    assert '"label": "top_up_failed"' in prompt  # a non-string output is shown as JSON
    assert "Wrong: expected transfer_into_account." in prompt
    assert prompt.index("train-3") < prompt.index("train-7")


def test_placeholders_inside_the_texts_are_not_substituted() -> None:
    current = "Keep {examples} and {current_text} literally; json {'a': 1}"
    request = make_request(current)
    prompt = render_prompt("A {current_text} B {examples} C {other}", current, request.records)
    assert current in prompt
    assert prompt.endswith(" C {other}")
    assert prompt.count("## Example") == 2


def test_text_with_backticks_gets_a_longer_fence() -> None:
    current = "Answer like:\n```json\n{}\n```"
    prompt = render_prompt("{current_text}|{examples}", current, [])
    assert prompt.startswith(f"````\n{current}\n````|")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Here it is:\n```\nNew text.\n```\n", "New text."),
        ("```markdown\nNew text.\nLine two.\n```", "New text.\nLine two."),
        (
            "First draft:\n```\nold idea\n```\nFinal:\n```text\nBetter text.\n```\nDone.",
            "Better text.",
        ),
        ("````\nUse:\n```json\n{}\n```\nthen stop.\n````", "Use:\n```json\n{}\n```\nthen stop."),
        ("```\r\nWindows lines.\r\n```\r\n", "Windows lines."),
        ("```\n\n \t\n  indented first line\n\n```", "  indented first line"),
    ],
)
def test_answer_text_is_the_last_complete_fenced_block(answer: str, expected: str) -> None:
    parsed = parse_answer(answer, CURRENT)
    assert (parsed.new_text, parsed.rejection) == (expected, None)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("```\n   \n```", "empty"),
        # no finish_reason: the answer ended inside a block, cut or not, nobody says
        ("```\nA new text that was cut o", "unclosed_fence"),
        ("```\ndraft\n```\nAnd the final one:\n```\nhalf of it", "unclosed_fence"),
        ("A new text without any fence.", "no_fence"),
        ("Inline ```code``` is not a block.", "no_fence"),
        (f"```\n{CURRENT}\n```", "unchanged"),
        (f"```\n\n  {CURRENT}  \n\n```", "unchanged"),
    ],
)
def test_bad_answers_are_rejected_with_a_reason(answer: str, reason: str) -> None:
    parsed = parse_answer(answer, CURRENT)
    assert parsed.new_text is None
    assert parsed.rejection == reason


@pytest.mark.parametrize(
    ("answer", "finish_reason", "reason"),
    [
        # cut at max_tokens: truncated, whether or not a fence was open
        ("```\nA new text that was cut o", "length", "truncated"),
        ("Let me think about the examples first. The first one", "length", "truncated"),
        ("```\ndraft\n```\nAnd now the final", "length", "truncated"),
        ("", "length", "truncated"),
        # stopped on its own: a short answer is what it is
        ("Sure! Here is a better prompt.", "stop", "no_fence"),
        ("```\nYou are a helpful", "stop", "unclosed_fence"),
        ("", "stop", "empty"),
    ],
)
def test_the_finish_reason_decides_between_truncated_and_the_rest(
    answer: str, finish_reason: str, reason: str
) -> None:
    parsed = parse_answer(answer, CURRENT, finish_reason)
    assert (parsed.new_text, parsed.rejection) == (None, reason)


def test_a_complete_answer_that_stopped_on_its_own_is_adopted() -> None:
    assert parse_answer("```\nA better text.\n```", CURRENT, "stop").new_text == "A better text."


def test_custom_template_missing_a_placeholder_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "reflect.md"
    path.write_text("Improve this:\n{current_text}\nAnswer in a fenced block.\n")
    config = ProposerConfig(backend="command", command=["true"], prompt_template=path)
    with pytest.raises(ConfigError) as caught:
        build_proposer(config, NoCache(), tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "{examples}" in message
    assert caught.value.details["missing"] == "examples"


def test_custom_template_relative_to_base_dir_is_used(tmp_path: Path) -> None:
    (tmp_path / "reflect.md").write_text("TEXT:{current_text}\nEXAMPLES:{examples}\n")
    template = load_template(Path("reflect.md"), tmp_path)
    request = make_request()
    prompt = render_prompt(template, request.current_text, request.records)
    assert prompt.startswith(f"TEXT:```\n{CURRENT}\n```\nEXAMPLES:## Example 1")


def test_unreadable_template_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.md cannot be read"):
        load_template(Path("missing.md"), tmp_path)


def test_inputs_that_json_cannot_spell_are_rendered_as_strings() -> None:
    request = make_request()
    record = type(request.records[0])("x", {"when": Path("/tmp/a")}, None, 0.5, "")
    prompt = render_prompt("{current_text}{examples}", "t", [record])
    assert json.dumps("/tmp/a") in prompt
    assert "(no feedback)" in prompt
