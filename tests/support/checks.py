"""Checks every end-to-end test applies to the runs it makes."""

from __future__ import annotations

from pathlib import Path

from support.cli import run_cli


def replay_check(run_dir: Path) -> None:
    """`events replay --check`: the feed alone rebuilds what the artifacts say."""
    result = run_cli("events", "replay", "--events", str(run_dir / "events.jsonl"), "--check")
    assert result.exit_code == 0, f"{run_dir}: {result.output}"
