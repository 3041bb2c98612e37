"""The launcher that forks a run's child from the pre-imported fork server: the child
must be what `python -m` would have made it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from gepa_cli.artifacts.liveness import pid_alive
from gepa_cli.service import launch
from gepa_cli.service.launch import ChildSpec, LaunchError, start_child

# what a child sees, written to its stdout; it sits in the child's working directory,
# which the child has first on sys.path as `python -m` would
PROBE = """
import atexit, json, os, sys, time


def main(args):
    atexit.register(lambda: print("atexit ran", file=sys.stderr))
    seen = {
        "args": args,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "leads_its_group": os.getpgid(0) == os.getpid(),
        "leads_its_session": os.getsid(0) == os.getpid(),
        "probe": os.environ.get("PROBE"),
        "stdin": sys.stdin.read(),
    }
    print(json.dumps(seen))
    if args[0] == "raise":
        raise SystemExit(5)
    return int(args[0])


def sleep(args):
    time.sleep(float(args[0]))
"""


def _spec(tmp_path: Path, *args: str, entry: str = "launch_probe:main") -> ChildSpec:
    workdir = tmp_path / "workdir"
    workdir.mkdir(exist_ok=True)
    (workdir / "launch_probe.py").write_text(PROBE)
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
    child = start_child(_spec(tmp_path, "3", "more"))
    assert child.wait(timeout=30) == 3
    earlier, line = (tmp_path / "child.out").read_text().splitlines()
    assert earlier == "an earlier attempt"  # logs are appended to, never truncated
    seen = json.loads(line)
    assert seen == {
        "args": ["3", "more"],
        "argv": ["launch_probe:main", "3", "more"],
        "cwd": str(tmp_path / "workdir"),
        "leads_its_group": True,
        "leads_its_session": True,
        "probe": "from the service",
        "stdin": "",
    }
    assert (tmp_path / "child.err").read_text() == "atexit ran\n"


def test_exit_status_from_system_exit_a_crash_and_a_signal(tmp_path: Path) -> None:
    assert start_child(_spec(tmp_path, "raise")).wait(timeout=30) == 5
    crashed = start_child(_spec(tmp_path, "not a number"))
    assert crashed.wait(timeout=30) == 1
    assert "ValueError" in (tmp_path / "child.err").read_text()

    sleeper = start_child(_spec(tmp_path, "60", entry="launch_probe:sleep"))
    sleeper.signal_group(signal.SIGKILL)
    assert sleeper.wait(timeout=30) == -signal.SIGKILL


def test_a_missing_entry_fails_the_child_not_the_caller(tmp_path: Path) -> None:
    child = start_child(_spec(tmp_path, entry="no_such_module:main"))
    assert child.wait(timeout=30) == 1
    assert "ModuleNotFoundError" in (tmp_path / "child.err").read_text()


def test_a_dead_fork_server_takes_its_children_and_is_started_again(tmp_path: Path) -> None:
    sleeper = start_child(_spec(tmp_path, "60", entry="launch_probe:sleep"))
    server = launch._SERVER._ensure().popen
    server.kill()
    assert sleeper.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while pid_alive(sleeper.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_alive(sleeper.pid), "a child outlived its fork server"
    assert start_child(_spec(tmp_path, "0")).wait(timeout=30) == 0
    assert launch._SERVER._ensure().popen.pid != server.pid


def test_a_fork_server_that_cannot_start_is_a_one_line_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(launch.sys, "executable", "/bin/false")
    with pytest.raises(LaunchError) as caught:
        launch.ForkServer().warm()
    assert caught.value.error_code == "fork_server_error"
    assert caught.value.one_line().startswith("the fork server exited 1 before it was ready;")
    assert "\n" not in caught.value.one_line()
