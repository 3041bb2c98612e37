"""The benchmark's synthetic runs are real runs: every invariant and replay --check hold."""

from __future__ import annotations

from pathlib import Path

import orjson
from synthetic_runs import SyntheticSpec, write_synthetic_run
from workspace_scale import build

from gepa_cli.artifacts import read_jsonl
from support.cli import run_cli

ENDED = ("finished", "stopped", "failed")


def test_synthetic_runs_keep_every_invariant_and_replay(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for index, state in enumerate((*ENDED, "running")):
        write_synthetic_run(root, SyntheticSpec(state, state=state, seed=index))
    # two runs as the scale benchmark makes them (cache off, sparse checkpoints)
    rows = [build((root, index, 360)) for index in (8, 9)]
    assert all(n > 150 for n in rows), rows

    status = run_cli("workspace", "status", str(root), "--json")
    assert status.exit_code == 0, status.output
    report = orjson.loads(status.stdout)
    assert report["states"] == {"failed": 1, "finished": 2, "running": 1, "stopped": 2}
    for run in report["runs"]:
        outcomes = {i["name"]: i["outcome"] for i in run["invariants"]}
        if run["state"] == "running":
            assert {
                o for name, o in outcomes.items() if not name.startswith(("manifest", "cache"))
            } == {"ok"}
            continue
        assert set(outcomes.values()) == {"ok"}, (run["run_id"], outcomes)
        run_dir = Path(run["path"])
        check = run_cli("events", "replay", "--events", str(run_dir / "events.jsonl"), "--check")
        assert check.exit_code == 0, check.output
        # the manifest's best texts are the registered candidate's texts
        manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
        best = manifest["best_candidate"]
        [row] = [
            r for r in read_jsonl(run_dir / "candidates.jsonl") if r["candidate_id"] == best["id"]
        ]
        assert best["texts"] == row["texts"]

    by_id = {run["run_id"]: run for run in report["runs"]}
    assert by_id["stopped"]["stopped_by"] == "stop_file"
    assert by_id["failed"]["stopped_by"] == "proposer_failures"
    assert by_id["finished"]["stopped_by"] == "max_proposals"
    assert by_id["run-009"]["stopped_by"] == "stop_file"  # the benchmark stops every tenth
    # runs sharing a cache hit each other's entries; the benchmark's store nothing
    assert by_id["stopped"]["cache"]["container.rollout"]["hits"] > 0
    assert by_id["run-008"]["cache"]["container.rollout"].get("hits", 0) == 0
