"""The local launcher: app and command containers, clear start failures, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import orjson
import pytest

from gepa_cli.config import ContainerConfig
from gepa_cli.errors import ContainerError
from gepa_cli.runtime.container import ContainerLauncher
from support.cli import run_cli
from support.task_dir import SUPPORT

REFERENCE = SUPPORT / "reference_container.py"
SERVE = ["{python}", str(REFERENCE), "--port", "{port}"]


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie waiting for its reaper counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def app_module(tmp_path: Path, name: str) -> Path:
    (tmp_path / f"{name}.py").write_text(
        "from support.reference_container import create_app\napp = create_app()\n"
    )
    return tmp_path


def test_app_is_imported_from_the_config_folder_and_served(tmp_path: Path) -> None:
    base = app_module(tmp_path, "launch_app_mod")
    config = ContainerConfig(app="launch_app_mod:app", startup_timeout_seconds=10)
    launcher = ContainerLauncher(config, base_dir=base, log_dir=tmp_path)
    with launcher as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert str(base) not in sys.path
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=1)


def test_bad_app_spec_names_the_app(tmp_path: Path) -> None:
    config = ContainerConfig(app="no_such_module_xyz:app")
    with pytest.raises(ContainerError, match="no_such_module_xyz:app"):
        ContainerLauncher(config, base_dir=tmp_path, log_dir=tmp_path).start()


def test_command_runs_in_the_config_folder_and_logs(tmp_path: Path) -> None:
    config = ContainerConfig(command=SERVE, startup_timeout_seconds=20)
    launcher = ContainerLauncher(config, base_dir=tmp_path, log_dir=tmp_path / "logs")
    with launcher as url:
        assert launcher.process is not None and launcher.watchdog is not None
        pid, watchdog = launcher.process.pid, launcher.watchdog.pid
        assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path.resolve())
        assert httpx.get(f"{url}/program").json()["program_id"] == "keywords"
    assert not alive(pid) and not alive(watchdog)
    assert (tmp_path / "logs" / "container.log").exists()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("print('boom: missing dataset file'); raise SystemExit(3)", "exited with code 3"),
        ("import time; print('still loading weights'); time.sleep(30)", "within 1s"),
    ],
)
def test_failed_start_shows_the_last_output(tmp_path: Path, code: str, expected: str) -> None:
    config = ContainerConfig(command=["{python}", "-c", code], startup_timeout_seconds=1)
    launcher = ContainerLauncher(config, base_dir=tmp_path, log_dir=tmp_path)
    with pytest.raises(ContainerError) as caught:
        launcher.start()
    message = str(caught.value)
    assert expected in message and ("boom" in message or "still loading" in message)
    assert launcher.process is None


DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gepa_cli.config import ContainerConfig
    from gepa_cli.runtime.container import ContainerLauncher

    # a shell wrapper, so the container is a grandchild: the whole group must go
    command = ["sh", "-c", "{python} %s --port {port} & wait"]
    config = ContainerConfig(command=command, startup_timeout_seconds=30)
    launcher = ContainerLauncher(config, base_dir=Path(sys.argv[1]), log_dir=Path(sys.argv[1]))
    with launcher as url:
        print(launcher.process.pid, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_driver_leaves_no_container_behind(tmp_path: Path, signum: int) -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER % REFERENCE, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert driver.stdout is not None
        leader = int(driver.stdout.readline())
        members = [
            int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _pgid(int(pid)) == leader
        ]
        assert len(members) >= 2  # the shell and the server
        driver.send_signal(signum)
        driver.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in members)
        assert driver.returncode != 0
    finally:
        if driver.poll() is None:
            driver.kill()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def test_validate_runs_the_handshake(tmp_path: Path) -> None:
    app_module(tmp_path, "validate_app_mod")
    config = tmp_path / "gepa.toml"
    config.write_text(
        textwrap.dedent(
            """
            [container]
            app = "validate_app_mod:app"
            [dataset]
            train_seeds = "0:5"
            heldout_split = "test"
            heldout_seeds = [0, 1]
            [candidate]
            target_modules = ["system_prompt"]
            [proposer]
            command = ["cat"]
            [gepa]
            max_total_rollouts = 10
            """
        )
    )
    result = run_cli("gepa", "validate", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    payload = orjson.loads(result.stdout)
    container = payload["container"]
    assert container["program_id"] == "keywords"
    assert container["target_modules"] == ["system_prompt"]
    assert {role: info["size"] for role, info in container["dataset"].items()} == {
        "train": 5,
        "val": 5,
        "heldout": 2,
    }
    human = run_cli("gepa", "validate", "--config", str(config))
    assert "target modules: system_prompt" in human.stdout


def test_validate_reports_a_contract_violation(tmp_path: Path) -> None:
    app_module(tmp_path, "validate_bad_mod")
    config = tmp_path / "gepa.toml"
    config.write_text(
        '[container]\napp = "validate_bad_mod:app"\n[dataset]\ntrain_seeds = "0:5"\n'
        '[candidate]\ntarget_modules = ["planner"]\n'
        '[proposer]\ncommand = ["cat"]\n[gepa]\nmax_total_rollouts = 10\n'
    )
    result = run_cli("gepa", "validate", "--config", str(config))
    assert result.exit_code == 2
    assert "container_contract_error" in result.stderr and "planner" in result.stderr
