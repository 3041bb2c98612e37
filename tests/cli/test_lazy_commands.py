"""A command loads only its own module: `gepa run`, started by every service worker and CI
job, must not pay for what `query` or `report` need."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gepa_cli.cli.main import COMMANDS
from support.cli import run_cli

# modules that only some commands need, and the commands that need them
HEAVY = {"duckdb": "query", "jinja2": "report", "gepa_cli.client": "remote"}


def _loaded_after(*words: str) -> set[str]:
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gepa_cli.cli.main import app\n"
        f"result = CliRunner().invoke(app, {list(words)!r})\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(' '.join(m for m in {sorted(HEAVY)!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_gepa_run_loads_none_of_the_other_commands_modules() -> None:
    assert _loaded_after("gepa", "run", "--help") == set()


@pytest.mark.parametrize("module", sorted(HEAVY))
def test_each_command_still_loads_what_it_needs(module: str) -> None:
    assert module in _loaded_after(HEAVY[module], "--help")


def test_the_root_help_lists_every_command() -> None:
    shown = run_cli("--help").stdout
    listed = [line.split()[0] for line in shown.split("Commands:\n")[1].splitlines() if line]
    assert listed == list(COMMANDS)
