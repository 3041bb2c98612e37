"""CI parity on the Crafter cookbook: the committed recording replays to the golden feed.

`cookbooks/crafter/replay/` holds the response cache and the normalized event feed of a
run of `gepa.replay.toml` (gepa.toml with 30-step episodes on a few worlds, so the
recording stays small). A readonly replay must reproduce that feed exactly without
playing a step or calling the proposer, and a live run of the current code must still
produce it (otherwise the recording is stale: replay/README.md says how to record it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gepa_cli.cli.main import app

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "crafter"
CONFIG = COOKBOOK / "gepa.replay.toml"
REPLAY = COOKBOOK / "replay"
GOLDEN = REPLAY / "events.normalized.jsonl"
RECORDED_CACHE = REPLAY / "cache"
MAX_CACHE_FILES = 80
MAX_CACHE_BYTES = 1_500_000


def _run(
    tmp_path: Path, *, cache_mode: str, cache_path: Path, run_id: str
) -> tuple[dict[str, Any], Path]:
    env = {"GEPA_CLI_CACHE_PATH": str(cache_path)}
    result = CliRunner().invoke(
        app,
        [
            "gepa", "run", "--config", str(CONFIG), "--cache-mode", cache_mode,
            "--output-dir", str(tmp_path / "runs"), "--run-id", run_id, "--json",
        ],
        env=env,
        catch_exceptions=False,
    )  # fmt: skip
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
    assert facts["state"] == "finished"
    assert _compare(GOLDEN, run_dir / "events.jsonl") == 0
    assert _compare(GOLDEN, run_dir / "events.normalized.jsonl") == 0
    profile = json.loads((run_dir / "cache_profile.json").read_text())
    assert profile["mode"] == "readonly"
    for boundary, counts in profile["boundaries"].items():
        assert counts["hits"] > 0, boundary
        assert counts["misses"] == counts["writes"] == counts["not_stored"] == 0, boundary
    # the recording shows learning: the best playbook beats the seed on heldout worlds
    assert facts["best_heldout_mean"] - facts["seed_heldout_mean"] >= 0.1


def test_live_run_still_produces_the_golden_feed(tmp_path: Path) -> None:
    """Fails when the cookbook or the engine changed what the run does: record again."""
    _facts, run_dir = _run(
        tmp_path, cache_mode="readwrite", cache_path=tmp_path / "cache", run_id="live"
    )
    assert _compare(GOLDEN, run_dir / "events.jsonl") == 0, (
        "the recording in cookbooks/crafter/replay is stale; see its README to record again"
    )
    fresh = sorted(p.name for p in (tmp_path / "cache").rglob("*.json"))
    committed = sorted(p.name for p in RECORDED_CACHE.rglob("*.json"))
    assert fresh == committed


def test_compare_notices_a_different_feed(tmp_path: Path) -> None:
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
            "gepa", "run", "--config", str(CONFIG), "--cache-mode", "readonly",
            "--output-dir", str(tmp_path / "runs"),
        ],
        env={"GEPA_CLI_CACHE_PATH": str(empty)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "cache_miss" in result.output


def test_recording_is_small_and_portable() -> None:
    files = [p for p in RECORDED_CACHE.rglob("*") if p.is_file()]
    assert 0 < len(files) <= MAX_CACHE_FILES
    assert sum(p.stat().st_size for p in files) <= MAX_CACHE_BYTES
    assert all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    assert {p.relative_to(RECORDED_CACHE).parts[0] for p in files} == {"crafter"}
    text = GOLDEN.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    for event in events:
        assert "ts" not in event and "run_id" not in event
    for needle in (str(Path.home()), str(COOKBOOK.parents[1]), "/tmp/", "127.0.0.1"):
        assert needle not in text, needle
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text)
    # every rollout in the recording is a whole episode with its trace
    rollouts = list((RECORDED_CACHE / "crafter" / "container.rollout").rglob("*.json"))
    assert rollouts
    for path in rollouts[:5]:
        body = json.loads(path.read_text())["response"]
        assert body["status"] == "completed"
        assert len(body["trace"]) == body["output"]["steps"] <= 30


@pytest.mark.parametrize("path", [GOLDEN, *sorted(RECORDED_CACHE.rglob("*.json"))[:20]])
def test_recording_holds_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}|Bearer ", text)
