"""The progress display of `gepa run` (issue 20 item 6, issue 19's progress bullet):
best score, candidates, proposals by outcome and spend next to the rollout bar; it
fits 80 columns without cutting the count or the clock, moves during a long proposal
and during the seed validation, and ends on the run's real totals."""

from __future__ import annotations

import importlib
import io
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from gepa_cli.artifacts import read_jsonl
from gepa_cli.runner import GepaRun
from gepa_cli.runner.progress import LiveStats, ProgressDisplay
from support.cli import run_cli
from support.task_dir import make_task_dir

ELAPSED = 3 * 3600 + 12 * 60 + 5  # 3:12:05

# The reference task, served in-process, asking a probe what the display shows as each
# rollout arrives: a look from inside the run, at a point fixed by the run itself.
SPY_CONTAINER = """
from reference_container import create_app

app = create_app()
PROBE = None
SEEN = []


@app.middleware("http")
async def probe(request, call_next):
    if request.url.path == "/rollout" and PROBE is not None:
        SEEN.append(PROBE())
    return await call_next(request)
"""


def event(event_type: str, **data: Any) -> Mapping[str, Any]:
    return {"type": event_type, "data": data}


def shown(display: ProgressDisplay, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(display.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.splitlines()]


class Live:
    """Live stats a test can change between two looks at the display."""

    def __init__(self) -> None:
        self.stats = LiveStats()

    def __call__(self) -> LiveStats:
        return self.stats


def busy_display(live: Live) -> ProgressDisplay:
    display = ProgressDisplay(
        Console(file=io.StringIO()), 1500, live, lambda: ELAPSED, auto_refresh=False
    )
    for item in (
        event("run.started"),
        *[event("candidate.registered") for _ in range(12)],
        event("frontier.updated", best_val_mean=0.61042),
        event("budget.updated", rollouts={"total": 1234}),
        event("proposal.completed"),
        event("candidate.accepted", proposal_ids=["p0001"]),
        event("proposal.completed"),
        event("candidate.rejected", proposal_ids=["p0002"]),
        event("proposal.completed"),
        event("candidate.rejected", proposal_ids=["p0003"]),
        event("proposal.failed", kind="rejection", reason="truncated"),
        event("proposal.failed", kind="error", reason="timed out"),
    ):
        display.on_event(item)
    return display


@pytest.mark.parametrize("width", [80, 60])
def test_the_count_and_the_clock_are_never_cut(width: int) -> None:
    live = Live()
    live.stats = LiveStats(spent_usd=0.01234, cache_hits=3, proposing_seconds=(41.7,))
    lines = shown(busy_display(live), width)
    assert all(len(line) <= width for line in lines), lines
    assert "1234/1500 rollouts" in lines[0] and "3:12:05" in lines[0], lines
    stats = " ".join(line.strip() for line in lines[1:])
    for part in ("best val 0.610", "12 candidates", "spent $0.0123", "3 cache hits"):
        assert part in stats, lines


def test_a_child_with_no_room_to_validate_is_counted_as_unvalidated() -> None:
    display = busy_display(Live())
    display.on_event(event("proposal.completed"))
    display.on_event(event("chain.abandoned", proposal_ids=["p0004"], length=1))
    assert (
        "6 proposals (1 accepted, 2 rejected, 1 unvalidated, 1 unusable, 1 failed)"
        in (shown(display, 200)[1])
    )


def test_a_chain_tip_validated_at_the_end_is_counted_once() -> None:
    display = busy_display(Live())
    display.on_event(event("proposal.completed"))
    display.on_event(event("chain.extended", proposal_ids=["p0004"], length=1))
    # the run ends and validates the open chain's tip: its verdict comes a second time
    display.on_event(event("candidate.accepted", proposal_ids=["p0004"]))
    assert (
        "6 proposals (1 accepted, 1 extended, 2 rejected, 1 unusable, 1 failed)"
        in (shown(display, 200)[1])
    )


def test_failed_and_rejected_proposals_are_shown() -> None:
    lines = shown(busy_display(Live()), 200)
    assert "5 proposals (1 accepted, 2 rejected, 1 unusable, 1 failed)" in lines[1]


def test_it_moves_while_a_proposal_is_under_way() -> None:
    live = Live()
    display = busy_display(live)
    live.stats = LiveStats(proposing_seconds=(35.2,))
    first = shown(display, 80)
    live.stats = LiveStats(proposing_seconds=(48.9,))
    later = shown(display, 80)
    assert "proposing 35s" in first[0] and "proposing 48s" in later[0]


def test_it_moves_during_the_seed_validation() -> None:
    live = Live()
    display = ProgressDisplay(
        Console(file=io.StringIO()), 200, live, lambda: 1.0, auto_refresh=False
    )
    display.on_event(event("run.started"))
    assert "0/200 rollouts" in shown(display, 80)[0]
    live.stats = LiveStats(rollouts_back=7)  # back from the container, not charged yet
    assert "7/200 rollouts" in shown(display, 80)[0]
    assert "validating the seed" in shown(display, 80)[0]


def test_it_moves_during_the_seed_validation_and_says_when_heldout_begins(
    tmp_path: Path,
) -> None:
    config = make_task_dir(
        tmp_path / "task",
        cache={"mode": "off"},
        # one rollout at a time: the k-th to go out finds the k-1 before it back
        container={"app": "progress_spy:app", "max_concurrency": 1},
        dataset={"val_seeds": "100:105", "heldout_seeds": "0:5"},
        gepa={"max_total_rollouts": 40, "minibatch_size": 3},
    )
    (config.parent / "progress_spy.py").write_text(SPY_CONTAINER, encoding="utf-8")
    sys.path.insert(0, str(config.parent))
    try:
        spy = importlib.import_module("progress_spy")  # the module the run will serve
        run = GepaRun.from_toml(config, run_id="r", output_dir=tmp_path / "runs")
        display = ProgressDisplay(
            Console(file=io.StringIO()), 40, run.live_stats, auto_refresh=False
        )
        run.on_event(display.on_event)
        spy.PROBE = lambda: (display.phase(), display.completed())
        with display:
            result = run.execute()
        seen: list[tuple[str, int]] = spy.SEEN
    finally:
        sys.path.remove(str(config.parent))
        sys.modules.pop("progress_spy", None)
    val = 5  # the seed is validated on val seeds 100:105
    seed_validation = seen[:val]
    assert [phase for phase, _ in seed_validation] == ["validating the seed"] * val
    assert [done for _, done in seed_validation] == list(range(val))  # moving, not 0
    assert seen[val][0].startswith("iteration") or seen[val][0].startswith("proposing")
    heldout = result.manifest["budget"]["rollouts"]["heldout"]
    assert heldout > 0
    assert {phase for phase, _ in seen[-heldout:]} == {"heldout"}
    assert "heldout" not in {phase for phase, _ in seen[:-heldout]}


def test_an_unknown_spend_reads_unknown() -> None:
    live = Live()
    live.stats = LiveStats(spent_usd=0.0, spent_known=False)
    assert "spent unknown" in " ".join(shown(busy_display(live), 80))


@pytest.mark.parametrize("validation", ["full", "adaptive"])
def test_its_last_numbers_are_the_runs_totals(tmp_path: Path, validation: str) -> None:
    config = make_task_dir(
        tmp_path / "task",
        cache={"mode": "off"},
        gepa={"max_total_rollouts": 150, "minibatch_size": 3, "validation": validation},
    )
    run = GepaRun.from_toml(config, run_id="r", output_dir=tmp_path / "runs")
    display = ProgressDisplay(
        Console(file=io.StringIO()), 150, run.live_stats, run.elapsed_seconds, auto_refresh=False
    )
    run.on_event(display.on_event)
    with display:
        result = run.execute()
    budget = result.manifest["budget"]
    # heldout comes after the last checkpoint's budget.updated: it must be counted too
    assert budget["rollouts"]["heldout"] > 0
    lines = shown(display, 100)
    assert f"{budget['rollouts']['total']}/150 rollouts" in lines[0]
    assert f"{budget['proposals']} proposals" in lines[1]
    assert f"{result.manifest['num_candidates']} candidates" in lines[1]
    assert "done" in lines[0]
    # each proposal counted once, under the outcome the proposals ledger gives it
    ledger = Counter(
        row["outcome"].split(":")[0] for row in read_jsonl(result.run_dir / "proposals.jsonl")
    )
    ledger["failed"] = ledger.pop("error", 0)
    assert {k: n for k, n in display.counts.outcomes.items() if n} == {
        k: n for k, n in ledger.items() if n and k != "not_evaluated"
    }
    if validation == "adaptive":
        assert ledger["extended"] > 0 and "extended" in lines[1]


def test_it_stays_quiet_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path / "task", cache={"mode": "off"})
    result = run_cli(
        "gepa", "run", "-c", str(config), "--run-id", "r", "--output-dir", str(tmp_path / "runs")
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("run r finished")  # the summary and nothing before it
    assert "rollouts " not in result.stderr and "━" not in result.stderr
    assert orjson.loads((tmp_path / "runs" / "r" / "manifest.json").read_bytes())
