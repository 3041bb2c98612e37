"""Checks every end-to-end test applies to the runs it makes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gepa_cli.cli.main import app


def replay_check(run_dir: Path) -> None:
    """`events replay --check`: the feed alone rebuilds what the artifacts say."""
    result = CliRunner().invoke(
        app, ["events", "replay", "--events", str(run_dir / "events.jsonl"), "--check"]
    )
    assert result.exit_code == 0, f"{run_dir}: {result.output}"
