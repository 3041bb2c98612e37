"""A run with adaptive validation end to end: chains extend, their tips are validated,
and the run directory passes `events replay --check` and every workspace invariant."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gepa_cli.artifacts import read_jsonl
from gepa_cli.runner import GepaRun
from gepa_cli.workspace import workspace_status
from support.task_dir import make_task_dir


def test_an_adaptive_run_extends_chains_and_keeps_its_run_directory_sound(
    tmp_path: Path,
) -> None:
    config = make_task_dir(
        tmp_path / "task",
        gepa={"max_total_rollouts": 300, "minibatch_size": 3, "validation": "adaptive"},
        cache={"mode": "off"},
    )
    result = GepaRun.from_toml(config, run_id="adaptive", output_dir=tmp_path / "runs").execute()
    assert result.state == "finished"
    events = read_jsonl(result.run_dir / "events.jsonl")
    kinds = Counter(e["type"] for e in events)
    assert kinds["chain.extended"] >= 1, kinds
    outcomes = Counter(
        row["outcome"].split(":")[0] for row in read_jsonl(result.run_dir / "proposals.jsonl")
    )
    assert outcomes["extended"] == kinds["chain.extended"]
    status = workspace_status(result.run_dir)
    assert [(i.name, i.detail) for run in status.runs for i in run.broken] == []
