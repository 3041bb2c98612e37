"""workspace status: liveness, half-written lines, and invariants that can break."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from synthetic_runs import SyntheticSpec, write_synthetic_run

from gepa_cli.artifacts import write_json_atomic
from gepa_cli.workspace import WorkspaceStatus, workspace_status
from gepa_cli.workspace.render import objectives_table, render_status
from support.cli import run_cli


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    # "live" first: "done" then hits the cache entries it left (the seed's validation)
    write_synthetic_run(root, SyntheticSpec("live", state="running", seed=2))
    write_synthetic_run(root, SyntheticSpec("done", seed=1))
    return root


def cli(*args: str) -> tuple[int, str, str]:
    result = run_cli(*args)
    return result.exit_code, result.stdout, result.stderr


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_running_run_with_half_written_lines(runs: Path) -> None:
    live = runs / "live"
    assert not (live / "rollouts.jsonl").read_bytes().endswith(b"\n")
    status = workspace_status(runs)
    by_id = {r.run_id: r for r in status.runs}
    assert by_id["live"].state == "running"
    assert by_id["live"].pid == os.getpid()
    assert by_id["done"].state == "finished"
    assert status.ok, status.to_dict()["broken"]
    # the cut-off line is not a row; the complete rows after the checkpoint are
    complete = (live / "rollouts.jsonl").read_bytes().count(b"\n")
    assert sum(by_id["live"].rollouts_by_status.values()) == complete
    skipped = {i.name for i in by_id["live"].invariants if i.outcome == "skipped"}
    assert "manifest.rollouts" in skipped and "cache.profile_matches_ledgers" in skipped
    code, out, _ = cli("workspace", "status", str(runs), "--json")
    assert code == 0
    report = orjson.loads(out)
    assert report["states"] == {"finished": 1, "running": 1}


def test_dead_pid_is_crashed_not_running(runs: Path) -> None:
    lock = runs / "live" / "run.lock"
    info = orjson.loads(lock.read_bytes())
    write_json_atomic(lock, {**info, "pid": dead_pid()})
    run = {r.run_id: r for r in workspace_status(runs).runs}["live"]
    assert run.state == "crashed" and run.lock == "stale"
    write_json_atomic(lock, {**info, "host": socket.gethostname() + "-elsewhere"})
    assert {r.run_id: r for r in workspace_status(runs).runs}["live"].state == "unknown"


def test_deleted_candidate_line_breaks_frontier_invariant(runs: Path) -> None:
    path = runs / "done" / "candidates.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    frontier = orjson.loads((runs / "done" / "frontier.json").read_bytes())
    member = frontier["frontier"][next(iter(frontier["frontier"]))][0]
    kept = [line for line in lines if orjson.loads(line)["candidate_id"] != member]
    assert len(kept) == len(lines) - 1
    path.write_bytes(b"".join(kept))
    code, _, err = cli("workspace", "status", str(runs))
    assert code == 1
    assert f"done: frontier.members_registered broken: {member} is on the frontier" in err
    assert "fix: candidates.jsonl lost rows" in err
    assert "done: manifest.artifacts broken: candidates.jsonl has" in err


def test_edited_manifest_total_breaks_rollouts_invariant(runs: Path) -> None:
    path = runs / "done" / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    manifest["budget"]["rollouts"]["total"] += 1
    write_json_atomic(path, manifest)
    code, out, _ = cli("workspace", "status", str(runs), "--json")
    assert code == 1
    broken = orjson.loads(out)["broken"]
    assert [b["name"] for b in broken] == ["manifest.rollouts"]
    assert broken[0]["run_id"] == "done"
    assert "budget.rollouts.total is" in broken[0]["detail"]
    assert broken[0]["hint"].startswith("manifest.json and rollouts.jsonl disagree")


def _rewrite(path: Path, edit: object) -> None:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    rows = edit(rows)  # type: ignore[operator]
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows))


def test_seq_gap_cost_cache_and_checkpoint_breaks(runs: Path) -> None:
    done = runs / "done"
    _rewrite(done / "events.jsonl", lambda rows: rows[:3] + rows[4:])
    _rewrite(
        done / "rollouts.jsonl",
        lambda rows: [
            {
                **r,
                "cache_action": "write" if r["cache_action"] == "hit" else r["cache_action"],
                "usage": {**r["usage"], "cost_usd": r["usage"]["cost_usd"] * 2},
            }
            for r in rows
        ],
    )
    broken = {i.name: i for i in {r.run_id: r for r in workspace_status(runs).runs}["done"].broken}
    assert "a gap" in broken["events.seq_contiguous"].detail
    assert "the ledgers sum to" in broken["manifest.cost"].detail
    assert "container.rollout hits is" in broken["cache.profile_matches_ledgers"].detail
    assert "checkpoint.agrees_with_events" in broken


def test_accepted_without_full_validation(runs: Path) -> None:
    _rewrite(
        runs / "done" / "candidates.jsonl",
        lambda rows: [
            {**r, "val_count": r["val_count"] - 1} if r["origin"] != "seed" else r for r in rows
        ],
    )
    broken = {i.name: i for i in {r.run_id: r for r in workspace_status(runs).runs}["done"].broken}
    assert "has val_count 7, expected 8" in broken["candidates.accepted_validated"].detail


def test_run_without_objectives_shows_none(runs: Path) -> None:
    # the synthetic task reports a score and no objective scores
    done = {r.run_id: r for r in workspace_status(runs).runs}["done"]
    assert done.seed_objective_means == {} and done.best_objective_means == {}
    assert objectives_table(done) is None
    code, out, _ = cli("workspace", "status", str(runs), "--json")
    assert code == 0
    for run in orjson.loads(out)["runs"]:
        assert run["seed_objective_means"] == {} and run["best_objective_means"] == {}
    code, _, err = cli("workspace", "status", str(runs), "--details")
    assert code == 0 and "best objectives" in err
    assert "objective means on validation" not in err


def test_many_objectives_leave_the_table_for_details(runs: Path) -> None:
    done = {r.run_id: r for r in workspace_status(runs).runs}["done"]
    # names come from the task: one that looks like rich markup is shown as it is
    names = [f"achievement_{i:02d}" for i in range(21)] + ["make[wood_pickaxe]"]
    many = replace(
        done,
        seed_objective_means={n: 0.0 for n in names},
        best_objective_means={n: i / 22 for i, n in enumerate(names)},
    )
    console = Console(record=True, width=160, file=io.StringIO())
    render_status(WorkspaceStatus(path=str(runs), runs=[many]), console)
    text = console.export_text()
    assert "22 (--details)" in text and "achievement_00" not in text
    console = Console(record=True, width=160, file=io.StringIO())
    render_status(WorkspaceStatus(path=str(runs), runs=[many]), console, details=True)
    rows = [" ".join(line.replace("│", " ").split()) for line in console.export_text().splitlines()]
    assert "achievement_00 0.000 0.000 +0.000" in rows
    assert "make[wood_pickaxe] 0.000 0.955 +0.955" in rows


def test_missing_dir_is_exit_2(tmp_path: Path) -> None:
    code, _, err = cli("workspace", "status", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err
    code, _, err = cli("workspace", "status", str(tmp_path))
    assert code == 0 and "no runs" in err
