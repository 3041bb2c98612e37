"""`gepa-cli gepa run` at a real 80-column terminal (a pseudo-terminal): what a person
sees, whatever the display is made of (issue 20 item 6, issue 19's progress bullet).
The count and the clock are whole on every frame, and the last frame is the run's own
totals."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import orjson
import pytest

from support.task_dir import make_task_dir

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")
WIDTH = 80


def run_at_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``gepa-cli ARGS`` with stdout and stderr on an 80x24 pseudo-terminal; return
    its exit code and everything it wrote there."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, WIDTH, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    gepa_cli = Path(sys.executable).with_name("gepa-cli")
    process = subprocess.Popen(
        [str(gepa_cli), *args], cwd=cwd, stdin=child, stdout=child, stderr=child, env=env
    )
    os.close(child)
    written = bytearray()
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its side: all of it was read
            break
        if not chunk:
            break
        written += chunk
    os.close(main)
    return process.wait(timeout=120), written.decode("utf-8", "replace")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pty")
def test_every_frame_fits_80_columns_and_the_last_is_the_runs_totals(tmp_path: Path) -> None:
    config = make_task_dir(
        tmp_path / "task",
        cache={"mode": "off"},
        dataset={"val_seeds": "100:105", "heldout_seeds": "0:5"},
        gepa={"max_total_rollouts": 60, "minibatch_size": 3},
    )
    runs = tmp_path / "runs"
    code, screen = run_at_a_terminal(
        ["gepa", "run", "-c", str(config), "--run-id", "r", "--output-dir", str(runs)],
        tmp_path,
    )
    assert code == 0, screen
    shown, summary = ANSI.sub("", screen).split("run r finished")
    lines = [line.rstrip() for line in re.split(r"[\r\n]+", shown)]
    bars = [line for line in lines if "gepa" in line and "━" in line]
    assert bars, screen
    for line in lines:
        assert len(line) <= WIDTH, line
    # the count of rollouts and the elapsed time, whole on every frame
    count, clock = re.compile(r" \d+/60\b"), re.compile(r"\b\d+:\d\d:\d\d\b")
    cut = [bar for bar in bars if not (count.search(bar) and clock.search(bar))]
    assert not cut, cut

    manifest = orjson.loads((runs / "r" / "manifest.json").read_bytes())
    last = bars[-1]
    assert f" {manifest['budget']['rollouts']['total']}/60 " in last, last
    # the facts under the bar, wrapped between facts at 80 columns
    stats = " ".join(line.strip() for line in lines[lines.index(last) + 1 :])
    assert f"{manifest['budget']['proposals']} proposals" in stats, stats
    assert f"{manifest['num_candidates']} candidates" in stats, stats
    assert f"best val {manifest['best_candidate']['val_mean']:.3f}" in stats, stats
    assert "spent $" in stats
    assert "rollouts:   " in summary  # the summary follows the display
