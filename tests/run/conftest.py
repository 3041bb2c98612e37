"""Every run an end-to-end test makes must also replay cleanly from its feed alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gepa_cli.cli.main import app


def replay_check(run_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["events", "replay", "--events", str(run_dir / "events.jsonl"), "--check"]
    )
    assert result.exit_code == 0, f"{run_dir}: {result.output}"


@pytest.fixture(autouse=True)
def every_run_replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    base = tmp_path_factory.getbasetemp()
    for manifest in sorted(base.rglob("manifest.json")):
        replay_check(manifest.parent)
