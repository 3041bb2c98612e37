"""The launcher that forks a run's child from the pre-imported fork server: the child
must be what `python -m` would have made it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from gepa_cli.service.launch import ChildSpec, start_child


def _spec(tmp_path: Path, *args: str, entry: str = "service.launch_probe:main") -> ChildSpec:
    workdir = tmp_path / "workdir"
    workdir.mkdir(exist_ok=True)
    return ChildSpec(
        entry=entry,
        args=args,
        cwd=str(workdir),
        stdout=str(tmp_path / "child.out"),
        stderr=str(tmp_path / "child.err"),
        environ={**os.environ, "PROBE": "from the service"},
    )


def test_the_child_runs_in_its_own_session_directory_environment_and_logs(
    tmp_path: Path,
) -> None:
    (tmp_path / "child.out").write_text("an earlier attempt\n")
    child = start_child(_spec(tmp_path, "3", "more"), name="probe")
    assert child.wait(timeout=30) == 3
    earlier, line = (tmp_path / "child.out").read_text().splitlines()
    assert earlier == "an earlier attempt"  # logs are appended to, never truncated
    seen = json.loads(line)
    assert seen == {
        "args": ["3", "more"],
        "argv": ["service.launch_probe:main", "3", "more"],
        "cwd": str(tmp_path / "workdir"),
        "leads_its_group": True,
        "leads_its_session": True,
        "probe": "from the service",
        "stdin": "",
    }
    assert (tmp_path / "child.err").read_text() == "atexit ran\n"


def test_exit_status_from_system_exit_a_crash_and_a_signal(tmp_path: Path) -> None:
    assert start_child(_spec(tmp_path, "raise"), name="probe").wait(timeout=30) == 5
    crashed = start_child(_spec(tmp_path, "not a number"), name="probe")
    assert crashed.wait(timeout=30) == 1
    assert "ValueError" in (tmp_path / "child.err").read_text()

    sleeper = start_child(_spec(tmp_path, "60", entry="service.launch_probe:sleep"), name="s")
    sleeper.signal_group(signal.SIGKILL)
    assert sleeper.wait(timeout=30) == -signal.SIGKILL


def test_a_missing_entry_fails_the_child_not_the_caller(tmp_path: Path) -> None:
    child = start_child(_spec(tmp_path, entry="service.no_such_module:main"), name="probe")
    assert child.wait(timeout=30) == 1
    assert "ModuleNotFoundError" in (tmp_path / "child.err").read_text()
