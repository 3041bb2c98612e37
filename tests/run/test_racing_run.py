"""Racing validation through the whole pipeline: ledgers, replay and invariants agree."""

from __future__ import annotations

from pathlib import Path

import orjson

from gepa_cli.artifacts import EventWriter, RunDirectory, read_jsonl
from gepa_cli.engine import ProposalRequest, ProposalResult
from gepa_cli.runner.recorder import RunRecorder, Spend
from support.cli import run_cli
from support.task_dir import make_task_dir


def test_a_racing_run_replays_and_keeps_every_invariant(tmp_path: Path) -> None:
    config = make_task_dir(
        tmp_path / "task",
        dataset={"val_seeds": "100:160"},
        gepa={"max_total_rollouts": 400, "minibatch_size": 3, "validation": "racing"},
        cache={"mode": "off"},
    )
    runs = tmp_path / "runs"
    result = run_cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        "race",
        "--output-dir",
        str(runs),
        "--json",
    )
    assert result.exit_code == 0, result.output
    events = read_jsonl(runs / "race" / "events.jsonl")
    assert any(event["type"] == "validation.stage" for event in events)
    status = run_cli("workspace", "status", str(runs), "--json")
    assert status.exit_code == 0, status.output
    # (the autouse fixture also runs `events replay --check` on this run)


class _Answer:
    async def propose(self, request: ProposalRequest) -> ProposalResult:
        return ProposalResult(
            new_text=request.current_text + " more",
            prompt="p",
            raw_output="```\nx\n```",
            meta={"cache_action": "write"},
        )


async def test_a_dropped_child_settles_its_proposal_in_the_ledger(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "r")
    run_dir.create()
    ledgers = run_dir.open_ledgers()
    recorder = RunRecorder(
        run_dir, ledgers, EventWriter(ledgers.events, "r"), spend=Spend(), runner_state=dict
    )
    proposer = recorder.recording_proposer(_Answer(), "proposer.command")
    request = ProposalRequest(
        "c0000", "system_prompt", "be brief", {"system_prompt": "x"}, (), proposal_id="p0001"
    )
    await proposer.propose(request)
    recorder.emit(
        "proposal.completed",
        {
            "proposal_id": "p0001",
            "iteration": 1,
            "parent_id": "c0000",
            "component": "system_prompt",
            "text": "be brief more",
            "usage": {"cost_usd": 0.0},
        },
    )
    recorder.emit(
        "candidate.dropped",
        {"iteration": 1, "eval_id": "p0001", "stage": 1, "rival_id": "c0000", "val_count": 25},
    )
    ledgers.close()
    [row] = read_jsonl(run_dir.proposals)
    assert row["proposal_id"] == "p0001"
    assert row["outcome"] == "dropped: clearly worse than c0000 at stage 1"
    assert row["cache_action"] == "write" and row["raw_output"].startswith("```")
    assert orjson.loads(run_dir.events.read_bytes().splitlines()[-1])["seq"] == 1
