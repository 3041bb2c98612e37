"""A `gepa run` process that is told to stop leaves no container process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from support.task_dir import make_task_dir


def container_pids(marker: str) -> list[int]:
    """Processes whose command line names this test's copy of the container script."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "gepa_cli" not in cmdline:
            pids.append(int(entry.name))
    return pids


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find processes")
@pytest.mark.parametrize("signals", [1, 2], ids=["sigterm", "sigterm-twice"])
def test_sigterm_during_a_run_leaves_no_container(tmp_path: Path, signals: int) -> None:
    task = tmp_path / "task"
    script = task / "reference_container.py"
    config = make_task_dir(
        task,
        container={
            "app": None,
            "command": ["{python}", str(script), "--port", "{port}", "--latency", "0.3"],
        },
        cache={"mode": "off"},
    )
    run_dir = tmp_path / "runs" / "r"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gepa_cli.cli.main",
            "gepa",
            "run",
            "--config",
            str(config),
            "--run-id",
            "r",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_until(lambda: container_pids(str(script)), 30), "container never started"
    assert wait_until(lambda: (run_dir / "checkpoint.json").exists(), 30)
    for _ in range(signals):
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert wait_until(lambda: not container_pids(str(script)), 5), container_pids(str(script))
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert manifest["state"] == "stopped"
    assert manifest["stopped_by"] in ("terminated", "interrupted")
    if signals == 1:
        assert manifest["stopped_by"] == "terminated"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find processes")
def test_sigkill_of_gepa_run_leaves_no_container(tmp_path: Path) -> None:
    """No handler sees SIGKILL: the container must still die with its parent (defect 10)."""
    task = tmp_path / "task"
    script = task / "reference_container.py"
    config = make_task_dir(
        task,
        container={
            "app": None,
            "command": ["{python}", str(script), "--port", "{port}", "--latency", "0.3"],
        },
        cache={"mode": "off"},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gepa_cli.cli.main", "gepa", "run", "--config", str(config),
         "--run-id", "r", "--output-dir", str(tmp_path / "runs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert wait_until(lambda: container_pids(str(script)), 30), "container never started"
        assert wait_until(lambda: (tmp_path / "runs" / "r" / "checkpoint.json").exists(), 30)
        process.kill()
        process.wait(timeout=10)
        gone = wait_until(lambda: not container_pids(str(script)), 10)
        assert gone, f"orphaned container processes: {container_pids(str(script))}"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in container_pids(str(script)):  # never leave an orphan behind a failure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
