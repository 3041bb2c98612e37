"""A run killed with SIGKILL mid-flight resumes to exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.artifacts import read_jsonl
from support.checks import replay_check
from support.task_dir import make_task_dir


def cli(*args: str, kill_after: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GEPA_TEST_KILL_AFTER_ROLLOUTS"}
    if kill_after is not None:
        env["GEPA_TEST_KILL_AFTER_ROLLOUTS"] = str(kill_after)
    return subprocess.run(
        [sys.executable, "-m", "gepa_cli.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def manifest(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((run_dir / "manifest.json").read_bytes())
    return data


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("crash")
    config = make_task_dir(
        root,
        container={"app": "crashing_container:app", "max_concurrency": 4},
        cache={"mode": "off"},
    )
    runs = root / "runs"
    done = cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        "whole",
        "--output-dir",
        str(runs),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    return config, runs


@pytest.mark.parametrize("k", [3, 25, 70, 131])
def test_sigkill_then_resume_matches_the_uninterrupted_run(task: tuple[Path, Path], k: int) -> None:
    config, runs = task
    run_id = f"killed-{k}"
    killed = cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        run_id,
        "--output-dir",
        str(runs),
        kill_after=k,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = runs / run_id
    assert not (run_dir / "manifest.json").exists()

    resumed = cli("gepa", "resume", str(run_dir), "--json")
    if not (run_dir / "checkpoint.json").exists():
        # killed before the first safe point: nothing to resume, said in one line
        assert resumed.returncode == 2 and "checkpoint" in resumed.stderr
        return
    assert resumed.returncode == 0, resumed.stderr

    whole, again = manifest(runs / "whole"), manifest(run_dir)
    assert again["best_candidate"] == whole["best_candidate"]
    assert again["seed_candidate"] == whole["seed_candidate"]
    assert again["budget"] == whole["budget"]
    assert again["stopped_by"] == whole["stopped_by"]
    assert [change["state"] for change in again["state_history"]] == [
        "running",
        "running",
        "finished",
    ]

    events = read_jsonl(run_dir / "events.jsonl")
    assert [event["seq"] for event in events] == list(range(len(events)))
    assert (run_dir / "events.normalized.jsonl").read_bytes() == (
        runs / "whole" / "events.normalized.jsonl"
    ).read_bytes()

    replay_check(run_dir)
    replay_check(runs / "whole")
    rows = read_jsonl(run_dir / "rollouts.jsonl")
    keys = Counter((row["candidate_id"], row["example_id"], row["split"]) for row in rows)
    assert max(keys.values()) == 1, "a logical evaluation was recorded twice"
    assert len(rows) == whole["budget"]["rollouts"]["total"]
