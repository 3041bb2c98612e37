"""The recorder matches each proposer call to its ledger row by proposal id."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gepa_cli.artifacts import EventWriter, RunDirectory, read_jsonl
from gepa_cli.engine import ProposalRequest, ProposalResult
from gepa_cli.runner.recorder import RunRecorder, Spend


class _SlowFirst:
    """Answers p0001 after p0002, as concurrent proposer calls may."""

    def __init__(self) -> None:
        self.second_done = asyncio.Event()

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        if request.proposal_id == "p0001":
            await self.second_done.wait()
        else:
            self.second_done.set()
        return ProposalResult(
            new_text=f"{request.current_text} ({request.component})",
            prompt=f"prompt for {request.component}",
            raw_output=f"answer for {request.component}",
            meta={"cache_action": "write" if request.proposal_id == "p0001" else "hit"},
        )


async def test_proposal_rows_follow_their_id_not_the_order_calls_return(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "r")
    run_dir.create()
    ledgers = run_dir.open_ledgers()
    recorder = RunRecorder(
        run_dir, ledgers, EventWriter(ledgers.events, "r"), spend=Spend(), runner_state=dict
    )
    proposer = recorder.recording_proposer(_SlowFirst(), "proposer.command")
    texts = {"instructions": "be brief", "format": "json"}
    requests = [
        ProposalRequest("c0000", component, texts[component], texts, (), proposal_id=pid)
        for pid, component in (("p0001", "instructions"), ("p0002", "format"))
    ]
    answers = await asyncio.gather(*(proposer.propose(r) for r in requests))
    for request, answer in zip(requests, answers, strict=True):
        recorder.emit(
            "proposal.completed",
            {
                "proposal_id": request.proposal_id,
                "iteration": 1,
                "parent_id": "c0000",
                "component": request.component,
                "text": answer.new_text,
                "usage": {"cost_usd": 0.0},
            },
        )
    recorder.emit(
        "candidate.rejected",
        {"iteration": 1, "proposal_ids": ["p0001", "p0002"], "parent_id": "c0000"},
    )
    ledgers.close()
    rows = {row["proposal_id"]: row for row in read_jsonl(run_dir.proposals)}
    assert rows["p0001"]["prompt"] == "prompt for instructions"
    assert rows["p0001"]["raw_output"] == "answer for instructions"
    assert rows["p0001"]["cache_action"] == "write"
    assert rows["p0002"]["prompt"] == "prompt for format"
    assert rows["p0002"]["cache_action"] == "hit"
    assert {row["outcome"] for row in rows.values()} == {"rejected"}


def test_a_child_abandoned_for_lack_of_budget_settles_as_unvalidated(tmp_path: Path) -> None:
    """chain.abandoned names the edits of a chain (settled as extended already) or a
    child that passed its minibatch and found no room to be validated at its commit:
    only proposals still open take the new outcome."""
    run_dir = RunDirectory(tmp_path / "r")
    run_dir.create()
    ledgers = run_dir.open_ledgers()
    recorder = RunRecorder(
        run_dir, ledgers, EventWriter(ledgers.events, "r"), spend=Spend(), runner_state=dict
    )
    for pid in ("p0001", "p0002"):
        recorder.emit(
            "proposal.completed",
            {"proposal_id": pid, "iteration": 1, "parent_id": "c0000", "text": "t"},
        )
    recorder.emit("chain.extended", {"iteration": 1, "proposal_ids": ["p0001"], "length": 1})
    recorder.emit(
        "chain.abandoned",
        {
            "iteration": 2,
            "proposal_ids": ["p0001", "p0002"],
            "length": 2,
            "content_hash": "0" * 16,
            "reason": "max_total_rollouts",
        },
    )
    ledgers.close()
    rows = {row["proposal_id"]: row["outcome"] for row in read_jsonl(run_dir.proposals)}
    assert rows == {
        "p0001": "extended: chain of 1 edits",
        "p0002": "unvalidated: no room in the budget (max_total_rollouts)",
    }
