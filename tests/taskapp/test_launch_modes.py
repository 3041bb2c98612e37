"""One kit container, three ways to launch it, one normalized feed.

The example under examples/support_replies is a TaskApp of a few dozen lines. The same
object runs in-process (``app``), as a child the run starts (``command``) and as a
server started by hand (``url``); `gepa run` must produce byte-identical normalized
feeds from all three.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gepa_cli.runtime.container import free_port
from support.checks import replay_check
from support.cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_replies"


def copy_example(root: Path) -> Path:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".cache", "__pycache__"))
    return root / "gepa.toml"


def with_container(config: Path, line: str) -> Path:
    """The config with its ``app = ...`` line replaced by ``line``."""
    text = config.read_text()
    start = text.index('app = "support_task:app"')
    end = text.index("\n", start)
    changed = config.with_name(f"gepa.{abs(hash(line))}.toml")
    changed.write_text(text[:start] + line + text[end:])
    return changed


def run(config: Path, runs: Path, run_id: str) -> Path:
    result = run_cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        run_id,
        "--output-dir",
        str(runs),
        "--cache-mode",
        "off",
    )
    assert result.exit_code == 0, result.output
    replay_check(runs / run_id)
    return runs / run_id


def test_the_kit_example_gives_one_feed_in_all_three_launch_modes(tmp_path: Path) -> None:
    config = copy_example(tmp_path / "task")
    runs = tmp_path / "runs"
    feeds = {"app": run(config, runs, "app")}

    command = with_container(
        config, 'command = ["{python}", "-m", "support_task", "--port", "{port}"]'
    )
    feeds["command"] = run(command, runs, "command")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "support_task", "--port", str(port)],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the standalone container did not start"
            time.sleep(0.05)
        url = with_container(config, f'url = "http://127.0.0.1:{port}"')
        feeds["url"] = run(url, runs, "url")
    finally:
        server.terminate()
        server.wait(timeout=10)

    normalized = {mode: (d / "events.normalized.jsonl").read_bytes() for mode, d in feeds.items()}
    assert normalized["app"] == normalized["command"] == normalized["url"]
    assert b'"candidate.accepted"' in normalized["app"]  # the example does learn
    compare = run_cli(
        "events", "compare", "--left", str(feeds["app"]), "--right", str(feeds["url"])
    )
    assert compare.exit_code == 0, compare.output
