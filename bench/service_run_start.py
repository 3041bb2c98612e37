"""What a service run costs to start: forked from the pre-imported fork server (what
the service does) against a fresh `python -m gepa_cli.cli.main gepa run` (what it did
before), on the same small run: the test suite's sample task with 16 rollouts on an
in-process container and a command proposer.

Prints, for each way, the median wall time per run (runs one after another) and the
CPU per run (the runs' own and their proposer programs'), and the ratios.

    .venv/bin/python bench/service_run_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from gepa_cli.service import launch  # noqa: E402
from gepa_cli.service.launch import ChildSpec, start_child, warm  # noqa: E402
from support.task_dir import make_task_dir  # noqa: E402


def _argv(config: Path, output: Path, index: int) -> list[str]:
    return ["gepa", "run", "--config", str(config), "--run-id", f"r{index}",
            "--output-dir", str(output), "--json"]  # fmt: skip


def _children_cpu(pid: int | None = None) -> float:
    """CPU of the reaped children of ``pid`` (default: this process), in seconds."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def exec_run(config: Path, output: Path, index: int) -> None:
    argv = [sys.executable, "-m", "gepa_cli.cli.main", *_argv(config, output, index)]
    subprocess.run(argv, cwd=config.parent, check=True, capture_output=True)


def forked_run(config: Path, output: Path, index: int) -> None:
    spec = ChildSpec(
        entry="gepa_cli.cli.main:main",
        args=tuple(_argv(config, output, index)),
        cwd=str(config.parent),
        stdout=os.devnull,
        stderr=os.devnull,
        environ=dict(os.environ),
    )
    code = start_child(spec).wait()
    if code != 0:
        raise SystemExit(f"forked run {index} exited {code}")


def measure(
    way: Callable[[Path, Path, int], None],
    config: Path,
    output: Path,
    runs: int,
    cpu_of: int | None,
) -> tuple[float, float]:
    walls = []
    cpu_before = _children_cpu(cpu_of)
    for index in range(runs):
        started = time.perf_counter()
        way(config, output, index)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls), (_children_cpu(cpu_of) - cpu_before) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = make_task_dir(
            Path(tmp) / "task",
            dataset={"val_seeds": "100:103", "heldout_seeds": "0:2"},
            gepa={"max_total_rollouts": 16},
            cache={"mode": "off"},
        )
        warm()
        server_pid = launch._SERVER._ensure().popen.pid
        forked_run(config, Path(tmp) / "warmup", 0)  # first fork pages in the server
        fresh = measure(exec_run, config, Path(tmp) / "exec", args.runs, None)
        forked = measure(forked_run, config, Path(tmp) / "fork", args.runs, server_pid)
    print(f"{args.runs} runs of 16 rollouts each, one after another")
    print(f"{'start':<22}{'wall per run':>14}{'CPU per run':>14}")
    print(f"{'python -m (before)':<22}{fresh[0]:>13.3f}s{fresh[1]:>13.3f}s")
    print(f"{'fork server (now)':<22}{forked[0]:>13.3f}s{forked[1]:>13.3f}s")
    print(f"ratio fork/exec: wall {forked[0] / fresh[0]:.2f}, CPU {forked[1] / fresh[1]:.2f}")


if __name__ == "__main__":
    main()
