"""`gepa stop` and Ctrl-C stop a run at a safe point; either way it can be resumed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.artifacts import read_jsonl
from support.task_dir import make_task_dir


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gepa_cli.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gepa_cli.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for_checkpoints(events: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if events.exists():
            seen = events.read_bytes().count(b'"type":"checkpoint"')
            if seen >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{events} never reached {count} checkpoints")


def manifest(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((run_dir / "manifest.json").read_bytes())
    return data


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stop")
    config = make_task_dir(root, container={"app": "slow_container:app"}, cache={"mode": "off"})
    runs = root / "runs"
    whole = cli(
        "gepa", "run", "--config", str(config), "--run-id", "whole", "--output-dir", str(runs)
    )
    assert whole.returncode == 0, whole.stderr
    return config, runs


@pytest.mark.long
@pytest.mark.parametrize("how", ["stop-command", "ctrl-c"])
def test_stopped_run_resumes_to_the_uninterrupted_result(task: tuple[Path, Path], how: str) -> None:
    config, runs = task
    run_dir = runs / how
    process = start(
        "gepa", "run", "--config", str(config), "--run-id", how, "--output-dir", str(runs)
    )
    wait_for_checkpoints(run_dir / "events.jsonl", 2)
    if how == "ctrl-c":
        process.send_signal(signal.SIGINT)
    else:
        stopped = cli("gepa", "stop", str(run_dir))
        assert stopped.returncode == 0, stopped.stderr
    _, stderr = process.communicate(timeout=60)
    expected_exit, reason = (130, "interrupted") if how == "ctrl-c" else (0, "stop_file")
    assert process.returncode == expected_exit, stderr
    stopped_manifest = manifest(run_dir)
    assert stopped_manifest["state"] == "stopped"
    assert stopped_manifest["stopped_by"] == reason
    assert not (run_dir / "STOP").exists()
    assert not (run_dir / "run.lock").exists()

    resumed = cli("gepa", "resume", str(run_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    whole, again = manifest(runs / "whole"), manifest(run_dir)
    assert again["state"] == "finished"
    assert again["best_candidate"] == whole["best_candidate"]
    assert again["budget"] == whole["budget"]
    assert (run_dir / "events.normalized.jsonl").read_bytes() == (
        runs / "whole" / "events.normalized.jsonl"
    ).read_bytes()
    events = read_jsonl(run_dir / "events.jsonl")
    assert [event["seq"] for event in events] == list(range(len(events)))
    # the manifest keeps every state the run went through, as the registry does
    states = ["running", "stopped", "running", "finished"]
    assert [change["state"] for change in again["state_history"]] == states
    registry = [r for r in read_jsonl(runs / "index.jsonl") if r["run_id"] == how]
    assert [r["state"] for r in registry] == states


def test_resume_refuses_a_finished_run_and_a_changed_config(task: tuple[Path, Path]) -> None:
    config, runs = task
    finished = cli("gepa", "resume", str(runs / "whole"))
    assert finished.returncode == 2 and "already finished" in finished.stderr

    run_dir = runs / "changed"
    process = start(
        "gepa", "run", "--config", str(config), "--run-id", "changed", "--output-dir", str(runs)
    )
    wait_for_checkpoints(run_dir / "events.jsonl", 1)
    assert cli("gepa", "stop", str(run_dir)).returncode == 0
    process.communicate(timeout=60)
    edited = config.parent / "edited.toml"
    edited.write_text(config.read_text().replace("minibatch_size = 3", "minibatch_size = 4"))
    refused = cli("gepa", "resume", str(run_dir), "--config", str(edited))
    assert refused.returncode == 2
    assert "error [resume_error]" in refused.stderr
    assert "gepa.minibatch_size" in refused.stderr
