"""CI parity on our own cookbook: the committed recording replays to the golden feed.

`cookbooks/tblite/replay/` holds the response cache and the normalized event feed of
a run of `gepa.toml`. A readonly replay must reproduce that feed exactly without calling
anything live, and a live run of the current code must still produce it (otherwise the
recording is stale and needs recording again, see replay/README.md).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gepa_cli.cli.main import app

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "tblite"
CONFIG = COOKBOOK / "gepa.toml"
REPLAY = COOKBOOK / "replay"
GOLDEN = REPLAY / "events.normalized.jsonl"
RECORDED_CACHE = REPLAY / "cache"
# the recording is committed to git: it must stay small
MAX_CACHE_FILES = 300


def _run(
    tmp_path: Path, *, cache_mode: str, cache_path: Path, run_id: str
) -> tuple[dict[str, Any], Path]:
    result = CliRunner().invoke(
        app,
        [
            "gepa",
            "run",
            "--config",
            str(CONFIG),
            "--cache-mode",
            cache_mode,
            "--output-dir",
            str(tmp_path / "runs"),
            "--run-id",
            run_id,
            "--json",
        ],
        env={"GEPA_CLI_CACHE_PATH": str(cache_path)},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    return facts, Path(facts["run_dir"])


def _compare(left: Path, right: Path) -> int:
    result = CliRunner().invoke(
        app, ["events", "compare", "--left", str(left), "--right", str(right)]
    )
    return result.exit_code


def test_readonly_replay_reproduces_the_golden_feed(tmp_path: Path) -> None:
    facts, run_dir = _run(
        tmp_path, cache_mode="readonly", cache_path=RECORDED_CACHE, run_id="replay"
    )
    assert run_dir.parent == tmp_path / "runs"
    assert facts["state"] == "finished"
    assert _compare(GOLDEN, run_dir / "events.jsonl") == 0
    assert _compare(GOLDEN, run_dir / "events.normalized.jsonl") == 0

    # every call was served from the recording: nothing live, nothing written
    profile = json.loads((run_dir / "cache_profile.json").read_text())
    assert profile["mode"] == "readonly"
    for boundary, counts in profile["boundaries"].items():
        assert counts["hits"] > 0, boundary
        assert counts["misses"] == counts["writes"] == counts["not_stored"] == 0, boundary
    # the demo's promise, as recorded
    assert facts["best_heldout_mean"] - facts["seed_heldout_mean"] >= 0.15


@pytest.mark.skipif(
    os.environ.get("TBLITE_LIVE_REPLAY_CHECK") != "1",
    reason="a live run of gepa.toml takes ~40 s; set TBLITE_LIVE_REPLAY_CHECK=1 to run it",
)
def test_live_run_still_produces_the_golden_feed(tmp_path: Path) -> None:
    """Fails when the cookbook or the engine changed what the run does: record again."""
    pytest.importorskip("gepa_cli.taskapp", reason="the task-app kit is not installed")
    _facts, run_dir = _run(
        tmp_path, cache_mode="readwrite", cache_path=tmp_path / "cache", run_id="live"
    )
    assert _compare(GOLDEN, run_dir / "events.jsonl") == 0, (
        "the recording in cookbooks/tblite/replay is stale; see its README to record again"
    )
    # the fresh recording holds the same entries as the committed one
    fresh = sorted(p.name for p in (tmp_path / "cache").rglob("*.json"))
    committed = sorted(p.name for p in RECORDED_CACHE.rglob("*.json"))
    assert fresh == committed


def test_compare_notices_a_different_feed(tmp_path: Path) -> None:
    """The parity check can fail: one changed score makes the feeds differ."""
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()
    finished = next(i for i, line in enumerate(lines) if '"run.finished"' in line)
    event = json.loads(lines[finished])
    event["data"]["best_heldout_mean"] = 1.0
    lines[finished] = json.dumps(event, sort_keys=True)
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _compare(GOLDEN, changed) == 1


def test_replay_from_an_empty_cache_calls_nothing_live(tmp_path: Path) -> None:
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    result = CliRunner().invoke(
        app,
        [
            "gepa",
            "run",
            "--config",
            str(CONFIG),
            "--cache-mode",
            "readonly",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        env={"GEPA_CLI_CACHE_PATH": str(empty)},
    )
    assert result.exit_code == 1
    assert "cache_miss" in result.output


def test_recording_is_small_and_portable() -> None:
    files = [p for p in RECORDED_CACHE.rglob("*") if p.is_file()]
    assert 0 < len(files) <= MAX_CACHE_FILES
    assert all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    assert {p.relative_to(RECORDED_CACHE).parts[0] for p in files} == {"tblite"}

    text = GOLDEN.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    for event in events:
        assert "ts" not in event and "run_id" not in event
    # nothing that belongs to the machine that recorded it
    for needle in (str(Path.home()), str(COOKBOOK.parents[1]), "/tmp/", "127.0.0.1"):
        assert needle not in text, needle
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text)


@pytest.mark.parametrize("path", [GOLDEN, *sorted(RECORDED_CACHE.rglob("*.json"))[:20]])
def test_recording_holds_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}|Bearer ", text)
