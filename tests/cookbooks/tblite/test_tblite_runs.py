"""No workspace is left behind by gepa-cli runs: after SIGTERM, and after a SIGKILL of
gepa-cli followed by ``gepa resume`` (whose finished run shows the normal case too).

Each test gives the sandbox its own base folder (``TBLITE_SANDBOX_DIR``), runs a small
config of the cookbook in a ``gepa-cli`` process and looks at what is left in that folder
and whether any sandbox process still runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gepa_cli.taskapp", reason="the task-app kit is not installed")

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "tblite"
GEPA_CLI = [sys.executable, "-m", "gepa_cli.cli.main"]
SMALL = """
[run]
output_dir = "runs"
[container]
app = "tblite_task.container:app"
max_concurrency = 2
[dataset]
train_split = "train"
val_split = "val"
heldout_split = "heldout"
train_seeds = "0:12"
val_seeds = "0:3"
heldout_seeds = "0:3"
[policy]
backend = "offline"
[proposer]
backend = "command"
command = ["{python}", "-m", "tblite_task.propose"]
input = "json"
[gepa]
max_total_rollouts = MAX
minibatch_size = 3
validation = "full"
minibatch_schedule = "fixed"
[cache]
mode = "off"
"""


def _setup(tmp_path: Path, max_rollouts: int) -> tuple[Path, Path, dict[str, str]]:
    config = tmp_path / "gepa.toml"
    config.write_text(SMALL.replace("MAX", str(max_rollouts)))
    base = tmp_path / "sandboxes"
    base.mkdir(mode=0o711)
    env = dict(os.environ)
    env["TBLITE_SANDBOX_DIR"] = str(base)
    env["PYTHONPATH"] = os.pathsep.join([str(COOKBOOK), *filter(None, [env.get("PYTHONPATH")])])
    return config, base, env


def _sandbox_processes(base: Path) -> list[int]:
    """Processes (jails and the commands they run) that belong to this test's sandboxes."""
    marker = f"TBLITE_SANDBOX_DIR={base}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _describe(pids: list[int]) -> str:
    """What each surviving process is, for the failure message."""
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/status").read_text().split("\n")[1:7]
            lines.append(f"{pid}: {cmd.strip()} {' | '.join(state)}")
        except OSError:
            lines.append(f"{pid}: gone")
    return "\n".join(lines)


def _wait_for_episode(base: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("ep-") and p.is_dir() for p in base.iterdir()):
        assert proc.poll() is None, "the run ended before any episode started"
        assert time.monotonic() < deadline, "no episode started within 60 s"
        time.sleep(0.005)


def _run(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*GEPA_CLI, *args],
        cwd=config.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_leaves_nothing(tmp_path: Path) -> None:
    config, base, env = _setup(tmp_path, 400)
    proc = _run(config, env, "gepa", "run", "--config", str(config), "--run-id", "term")
    _wait_for_episode(base, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert list(base.iterdir()) == []
    assert _sandbox_processes(base) == []


def test_sigkill_then_resume_leaves_nothing(tmp_path: Path) -> None:
    """The resumed run also shows that a run finishing normally leaves nothing."""
    config, base, env = _setup(tmp_path, 40)
    proc = _run(config, env, "gepa", "run", "--config", str(config), "--run-id", "killed")
    checkpoint = tmp_path / "runs" / "killed" / "checkpoint.json"
    deadline = time.monotonic() + 60
    while not checkpoint.exists():  # resume needs a first checkpoint
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    _wait_for_episode(base, proc)
    proc.kill()
    proc.communicate(timeout=60)
    # the jails die with gepa-cli; their folders cannot be removed by a killed process
    deadline = time.monotonic() + 10
    while _sandbox_processes(base) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = _sandbox_processes(base)
    assert survivors == [], _describe(survivors)
    assert any(p.name.startswith("ep-") for p in base.iterdir())  # left by the killed run
    resumed = _run(config, env, "gepa", "resume", str(tmp_path / "runs" / "killed"))
    _out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert list(base.iterdir()) == []
    assert _sandbox_processes(base) == []
