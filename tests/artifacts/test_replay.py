"""`events replay`: a real run's feed rebuilds its artifacts, and corruption is caught."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.artifacts import read_jsonl
from gepa_cli.artifacts.replay import check_artifacts, format_timeline, replay_events
from gepa_cli.errors import EventCompareError
from gepa_cli.runner import GepaRun
from support.cli import run_cli
from support.task_dir import make_task_dir


def make_run(root: Path, *, use_merge: bool) -> Path:
    config = make_task_dir(
        root,
        gepa={"max_total_rollouts": 150, "minibatch_size": 3, "use_merge": use_merge},
        cache={"mode": "off"},
    )
    result = GepaRun.from_toml(config, run_id="r1", output_dir=root / "runs").execute()
    return result.run_dir


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("real"), use_merge=False)


@pytest.fixture
def run_copy(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded run directory, free to corrupt."""
    return Path(shutil.copytree(recorded, tmp_path / "r1"))


def replay_cli(*args: str) -> Any:
    return run_cli("events", "replay", *args)


def test_the_feed_alone_rebuilds_the_run(recorded: Path) -> None:
    replay = replay_events(recorded / "events.jsonl")
    manifest = orjson.loads((recorded / "manifest.json").read_bytes())
    rows = read_jsonl(recorded / "candidates.jsonl")
    assert [c.id for c in replay.candidates] == [r["candidate_id"] for r in rows]
    assert [c.val_mean for c in replay.candidates] == [r["val_mean"] for r in rows]
    assert [c.texts for c in replay.candidates] == [r["texts"] for r in rows]
    assert len(replay.candidates) > 2, "the proposer should have improved the seed"
    best = replay.best_candidate
    assert best is not None and best.id == manifest["best_candidate"]["id"]
    assert best.val_mean == manifest["best_candidate"]["val_mean"]
    assert replay.frontier is not None
    assert (
        replay.frontier.frontier
        == orjson.loads((recorded / "frontier.json").read_bytes())["frontier"]
    )
    assert replay.budget == manifest["budget"]
    assert replay.stopped_by == manifest["stopped_by"] == "max_total_rollouts"
    assert [h["roles"] for h in replay.heldout] == [["seed"], ["best"]]
    assert replay.partial_last_line is None
    assert check_artifacts(replay).ok


def test_check_agrees_and_timeline_tells_the_story(recorded: Path) -> None:
    result = replay_cli("--events", str(recorded / "events.jsonl"), "--check")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "accepted as c0001" in out and "reflection on c0000" in out
    assert "minibatch sum" in out and "new best c0001" in out
    assert "run finished: stopped_by max_total_rollouts" in out
    assert "check: ok (candidates.jsonl, frontier.json, manifest.json, rollouts.jsonl" in out
    # noise stays out of the timeline
    assert "budget.updated" not in out and "checkpoint" not in out


def test_json_output_is_the_rebuilt_state(recorded: Path) -> None:
    result = replay_cli("--events", str(recorded / "events.jsonl"), "--json", "--check")
    assert result.exit_code == 0, result.output
    state = orjson.loads(result.stdout)
    manifest = orjson.loads((recorded / "manifest.json").read_bytes())
    assert state["best_candidate"]["id"] == manifest["best_candidate"]["id"]
    assert state["budget"]["rollouts"] == manifest["budget"]["rollouts"]
    assert state["stopped_by"] == "max_total_rollouts" and state["finished"] is True
    assert state["check"] == {
        "ok": True,
        "checked": ["candidates.jsonl", "frontier.json", "manifest.json", "rollouts.jsonl"],
        "disagreements": [],
    }


def drop_candidate_line(run: Path) -> str:
    path = run / "candidates.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    return f"check: candidates.jsonl {orjson.loads(lines[2])['candidate_id']}: feed"


def edit_frontier_best(run: Path) -> str:
    path = run / "frontier.json"
    frontier = orjson.loads(path.read_bytes())
    frontier["best_candidate_id"] = "c0000"
    path.write_bytes(orjson.dumps(frontier))
    return "check: frontier.json best_candidate_id: feed"


def edit_manifest_budget(run: Path) -> str:
    path = run / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    manifest["budget"]["rollouts"]["total"] += 5
    path.write_bytes(orjson.dumps(manifest))
    return "check: manifest.json budget.rollouts.total: feed"


def edit_candidate_score(run: Path) -> str:
    path = run / "candidates.jsonl"
    rows = read_jsonl(path)
    rows[1]["val_mean"] = 0.99
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return f"check: candidates.jsonl {rows[1]['candidate_id']}.val_mean: feed"


def drop_rollout_line(run: Path) -> str:
    path = run / "rollouts.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
    return "check: rollouts.jsonl rows: feed"


@pytest.mark.parametrize(
    "corrupt",
    [
        drop_candidate_line,
        edit_frontier_best,
        edit_manifest_budget,
        edit_candidate_score,
        drop_rollout_line,
    ],
)
def test_check_names_the_artifact_and_field(run_copy: Path, corrupt: Callable[[Path], str]) -> None:
    expected = corrupt(run_copy)
    result = replay_cli("--events", str(run_copy / "events.jsonl"), "--check")
    assert result.exit_code == 1, result.output
    assert expected in result.stdout, result.stdout
    assert "vs artifact" in result.stdout


def test_bad_json_in_the_middle_is_an_error(run_copy: Path) -> None:
    path = run_copy / "events.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[10] = b'{"seq": 10, "type": \n'
    path.write_bytes(b"".join(lines))
    result = replay_cli("--events", str(path), "--check")
    assert result.exit_code == 2
    assert "line 11 is not valid JSON" in result.stderr and "event_compare_error" in result.stderr
    with pytest.raises(EventCompareError):
        replay_events(path)


def test_a_seq_gap_is_an_error(run_copy: Path) -> None:
    path = run_copy / "events.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5] + lines[6:]))
    result = replay_cli("--events", str(path))
    assert result.exit_code == 2
    assert "line 6 has seq 6 where 5 was expected" in result.stderr


def test_a_half_written_last_line_is_tolerated_and_reported(run_copy: Path) -> None:
    path = run_copy / "events.jsonl"
    total = len(path.read_bytes().splitlines())
    with open(path, "ab") as handle:
        handle.write(b'{"data":{"iteration":')
    replay = replay_events(path)
    assert replay.events == total and replay.partial_last_line == total + 1
    result = replay_cli("--events", str(path))
    assert result.exit_code == 0, result.output
    assert f"line {total + 1} is half-written" in result.stdout


def test_unreadable_inputs_exit_2(run_copy: Path, tmp_path: Path) -> None:
    result = replay_cli("--events", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "cannot read" in result.stderr
    (run_copy / "frontier.json").write_text("{not json")
    result = replay_cli("--events", str(run_copy / "events.jsonl"), "--check")
    assert result.exit_code == 2 and "frontier.json is not valid JSON" in result.stderr


def test_a_merge_run_replays_and_checks(tmp_path: Path) -> None:
    run = make_run(tmp_path, use_merge=True)
    replay = replay_events(run / "events.jsonl")
    assert check_artifacts(replay).ok
    merges = [c for c in replay.candidates if c.origin == "merge"]
    # the reference task has one module, so a merge can only rebuild a known candidate
    assert len(merges) == replay.event_counts.get("merge.accepted", 0)


def test_merge_events_on_the_timeline(tmp_path: Path) -> None:
    def event(seq: int, type: str, **data: Any) -> bytes:
        return orjson.dumps({"seq": seq, "type": type, "run_id": "m", "data": data}) + b"\n"

    texts = {"a": "x", "b": "y"}
    lines = [
        event(0, "run.started", target_modules=["a", "b"], train_ids=[], val_ids=["v1"]),
        event(1, "candidate.registered", candidate_id="c0000", content_hash="h0", parents=[],
              origin="seed", iteration=0, proposal_id=None, texts=texts),
        event(2, "candidate.validated", candidate_id="c0000", val_mean=0.5, val_count=1),
        event(3, "iteration.started", iteration=4, kind="merge", parent_id="c0002"),
        event(4, "merge.proposed", iteration=4, merge_id="m0001", parent_ids=["c0002", "c0003"],
              ancestor_id="c0000", content_hash="h9", texts=texts, sources={}, subsample=["v1"]),
        event(5, "merge.rejected", iteration=4, merge_id="m0001", parent_ids=["c0002", "c0003"],
              content_hash="h9", parent_sums=[1.0, 2.0], merge_sum=1.5),
        event(6, "merge.accepted", iteration=5, merge_id="m0002", parent_ids=["c0002", "c0003"],
              content_hash="h8", parent_sums=[1.0, 2.0], merge_sum=2.0, candidate_id="c0004"),
        event(7, "candidate.registered", candidate_id="c0004", content_hash="h8",
              parents=["c0002", "c0003"], origin="merge", iteration=5, proposal_id="m0002",
              texts=texts),
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(lines))
    replay = replay_events(path)
    timeline = "\n".join(format_timeline(replay))
    assert "merge iteration from c0002" in timeline
    assert "m0001 proposed: c0002 + c0003 over c0000" in timeline
    assert "m0001 rejected: subsample sum 1.5000 vs parents 1.0000, 2.0000" in timeline
    assert "m0002 accepted as c0004" in timeline
    assert replay.candidates[-1].origin == "merge" and replay.candidates[-1].val_mean is None
    assert replay.finished is None and replay.stopped_by is None
