"""Runs that fail still leave a complete, consistent run directory."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from gepa_cli.cli.main import app
from support.task_dir import make_task_dir

FAILING_PROPOSER = "import sys\nsys.stderr.write('model offline\\n')\nsys.exit(3)\n"


def test_a_proposer_that_keeps_failing_stops_the_run_with_a_full_manifest(
    tmp_path: Path,
) -> None:
    config = make_task_dir(
        tmp_path / "task",
        gepa={"max_total_rollouts": 150, "max_consecutive_proposer_failures": 2},
        cache={"mode": "off"},
    )
    (config.parent / "propose.py").write_text(FAILING_PROPOSER)
    result = CliRunner().invoke(
        app,
        [
            "gepa",
            "run",
            "--config",
            str(config),
            "--run-id",
            "r",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error [proposer_error]") and "model offline" in line
    run_dir = tmp_path / "runs" / "r"
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert manifest["state"] == "failed"
    assert manifest["stopped_by"] == "proposer_failures"
    assert manifest["best_candidate"]["id"] == "c0000"
    assert manifest["best_candidate"]["texts"]["system_prompt"]
    assert manifest["error"]["error_code"] == "proposer_error"
    proposals = [orjson.loads(line) for line in (run_dir / "proposals.jsonl").open("rb")]
    assert [row["outcome"].split(":")[0] for row in proposals] == ["error", "error"]
    check = CliRunner().invoke(
        app, ["events", "replay", "--events", str(run_dir / "events.jsonl"), "--check"]
    )
    assert check.exit_code == 0, check.output
