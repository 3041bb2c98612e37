"""docs/containers.md shows the real --help output, the example's real code, and what
running the example really prints."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "containers.md").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "examples" / "support_replies" / "support_task.py").read_text(encoding="utf-8")


def help_blocks() -> list[tuple[str, str]]:
    """(command, the output shown under it) for every `$ gepa-cli ... --help` line."""
    blocks = []
    for match in re.finditer(r"^\$ (gepa-cli [^\n]*--help)\n(.*?)(?=^\$ |^```)", DOC, re.M | re.S):
        blocks.append((match.group(1), match.group(2).strip()))
    return blocks


@pytest.mark.parametrize(("command", "shown"), help_blocks(), ids=lambda v: str(v)[:40])
def test_help_output_is_real(command: str, shown: str) -> None:
    args = shlex.split(command)[1:]
    result = run_cli(*args)
    assert result.exit_code == 0
    assert result.output.strip() == shown


def test_the_doc_has_help_blocks_to_check() -> None:
    assert {command for command, _ in help_blocks()} >= {
        "gepa-cli container check --help",
        "gepa-cli gepa run --help",
    }


def test_the_tutorial_code_is_the_example() -> None:
    code = DOC.split("```python\n", 1)[1].split("```", 1)[0]
    example_lines = {line.strip() for line in EXAMPLE.splitlines()}
    missing = [line for line in code.splitlines() if line.strip() not in example_lines]
    assert not missing, missing


def test_the_example_run_prints_what_the_doc_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    match = re.search(
        r"^\$ (gepa-cli gepa run --config examples/[^\n]*)\n(.*?)^```", DOC, re.M | re.S
    )
    assert match, "the doc shows no run of the example"
    command, shown = match.group(1), match.group(2).strip()
    monkeypatch.chdir(tmp_path)
    # a copy, so the run's cache (next to the config) is not written into the project
    shutil.copytree(
        ROOT / "examples" / "support_replies", tmp_path / "examples" / "support_replies"
    )
    result = run_cli(*shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown
