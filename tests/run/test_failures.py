"""Runs that fail still leave a complete, consistent run directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.runner import GepaRun
from support.cli import run_cli
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
    result = run_cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        "r",
        "--output-dir",
        str(tmp_path / "runs"),
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
    check = run_cli("events", "replay", "--events", str(run_dir / "events.jsonl"), "--check")
    assert check.exit_code == 0, check.output


def test_a_run_that_failed_before_it_started_is_failed_and_healthy(tmp_path: Path) -> None:
    """Nothing was edited, so workspace status holds every invariant (exit 0)."""
    config = make_task_dir(
        tmp_path / "task",
        container={"app": None, "url": "http://127.0.0.1:9", "startup_timeout_seconds": 0.5},
    )
    runs = tmp_path / "runs"
    args = ["--config", str(config), "--run-id", "down", "--output-dir", str(runs)]
    result = run_cli("gepa", "run", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error [container_error]")
    manifest = orjson.loads((runs / "down" / "manifest.json").read_bytes())
    assert manifest["state"] == "failed" and manifest["budget"] is None
    status = run_cli("workspace", "status", str(runs), "--json")
    assert status.exit_code == 0, status.output
    report = orjson.loads(status.stdout)
    assert report["ok"] and report["states"] == {"failed": 1}
    outcomes = {i["name"]: i["outcome"] for i in report["runs"][0]["invariants"]}
    assert outcomes["manifest.rollouts"] == outcomes["manifest.proposals"] == "ok"
    assert outcomes["manifest.cost"] == outcomes["manifest.artifacts"] == "ok"
    # (the autouse fixture runs `events replay --check` on it too)


def test_a_listener_that_raises_costs_nothing_but_itself(tmp_path: Path) -> None:
    config = make_task_dir(
        tmp_path / "task",
        run={"run_id": "noisy", "output_dir": str(tmp_path / "runs")},
        gepa={"max_total_rollouts": 60, "minibatch_size": 3},
    )
    seen: list[str] = []

    def fragile(event: Mapping[str, Any]) -> None:
        seen.append(event["type"])
        if event["type"] == "candidate.validated":
            raise ValueError("the dashboard is down")

    run = GepaRun.from_toml(config)
    run.on_event(fragile)
    result = run.execute()
    assert result.state == "finished"
    assert seen[-1] == "candidate.validated"  # detached after it raised
    [failure] = result["listener_errors"]
    assert failure["listener"].endswith("fragile")
    assert failure["error"] == "ValueError: the dashboard is down"
    run_dir = tmp_path / "runs" / "noisy"
    assert not (run_dir / "run.lock").exists()
    assert (run_dir / "checkpoint.json").exists()
    status = run_cli("workspace", "status", str(run_dir), "--json")
    assert status.exit_code == 0, status.output
    assert orjson.loads(status.stdout)["states"] == {"finished": 1}
