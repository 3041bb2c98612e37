"""A run produced by `gepa-cli gepa run` passes every invariant and is queryable."""

from __future__ import annotations

from pathlib import Path

import orjson

from gepa_cli.workspace import Workspace, workspace_status
from support.cli import run_cli
from support.task_dir import make_task_dir


def write_config(tmp: Path) -> Path:
    return make_task_dir(
        tmp,
        run={"run_id": "real", "output_dir": "runs"},
        dataset={"train_seeds": "0:12", "val_seeds": "0:4", "heldout_seeds": "0:3"},
        seed_candidate={"system_prompt": "Answer well."},
        gepa={"max_total_rollouts": 60, "minibatch_size": 3},
        cache={"mode": "readwrite", "path": "cache", "namespace": "reference"},
    )


def test_status_and_query_on_a_real_run(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli("gepa", "run", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    runs = tmp_path / "runs"
    status = workspace_status(runs)
    assert [r.state for r in status.runs] == ["finished"]
    run = status.runs[0]
    report = {i.name: (i.outcome, i.detail) for i in run.invariants}
    assert status.ok, report
    assert all(outcome == "ok" for outcome, _ in report.values()), report
    assert run.events_by_type["run.finished"] == 1
    with Workspace.open(runs) as ws:
        _, rows = ws.query("SELECT count(*) FROM rollouts")
        manifest = orjson.loads((runs / "real" / "manifest.json").read_bytes())
        assert rows[0][0] == manifest["budget"]["rollouts"]["total"] > 0
        _, rows = ws.query("SELECT count(*) FROM frontier")
        assert rows[0][0] > 0
        # the proposer is read from the resolved config the runner writes
        _, rows = ws.query("SELECT proposer_backend FROM runs")
        assert rows == [("command",)]
        _, rows = ws.query("SELECT DISTINCT boundary FROM cache WHERE source = 'ledger'")
        assert sorted(r[0] for r in rows) == ["container.rollout", "proposer.command"]
    assert "proposer.command" in run.usage and "proposer.unknown" not in run.usage
    assert run.cache["proposer.command"]["ledger_write"] == run.proposals
    assert "proposer.unknown" not in run.cache
    # the reference task reports one objective; status shows the seed's and the best's
    candidates = {
        row["candidate_id"]: row
        for row in map(orjson.loads, (runs / "real" / "candidates.jsonl").read_bytes().splitlines())
    }
    assert run.seed_objective_means == candidates["c0000"]["objective_means"]
    assert run.best_candidate_id is not None
    assert run.best_objective_means == candidates[run.best_candidate_id]["objective_means"]
    assert list(run.best_objective_means) == ["coverage"]
    # without a manifest (a run still writing) the seed is found by its origin, the best
    # by frontier.json
    (runs / "real" / "manifest.json").rename(tmp_path / "manifest.json")
    (unfinished,) = workspace_status(runs).runs
    assert unfinished.state == "incomplete"
    assert unfinished.seed_objective_means == run.seed_objective_means
    assert unfinished.best_objective_means == run.best_objective_means
