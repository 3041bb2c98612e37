"""`gepa validate` without --json: a screenful a person reads, not the resolved config
(issue 20, item 7); the budget reads as the guarantee it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
OPENAI = REPO / "cookbooks" / "banking77" / "gepa.openai.toml"


def test_validate_prints_a_short_summary_with_seed_ranges() -> None:
    result = run_cli("gepa", "validate", "-c", str(OPENAI), "--skip-container")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) <= 10, lines  # the resolved config printed 462 lines
    assert (
        "dataset: train 231 (train 0:231), val 77 (val 0:77), heldout 154 (heldout 0:154)" in lines
    )
    assert "policy: openai_chat gpt-4.1-mini at https://api.openai.com/v1" in lines
    [budget] = [line for line in lines if line.startswith("budget: ")]
    assert budget.startswith("budget: at least ") and " proposals (max_total_rollouts;" in budget


def test_validate_checks_what_it_can_reach(tmp_path: Path) -> None:
    config = REPO / "cookbooks" / "banking77" / "gepa.toml"
    result = run_cli("gepa", "validate", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "policy: offline: ok: the offline policy calls no model" in result.stdout
    assert "proposer: command {python} -m banking77_task.propose: ok: found " in result.stdout


@pytest.mark.parametrize(
    ("seeds", "shown"),
    [
        (list(range(231)), "0:231"),
        ([0, 1, 2, 5, 7, 8], "0:3, 5, 7:9"),
        ([4], "4"),
        ([], "none"),
    ],
)
def test_seeds_read_as_ranges(seeds: list[int], shown: str) -> None:
    from gepa_cli.cli.gepa import seed_ranges

    assert seed_ranges(seeds) == shown


def test_the_budget_line_says_what_is_guaranteed() -> None:
    from gepa_cli.cli.gepa import budget_line

    preview = {"proposals": 5, "limited_by": "max_total_rollouts", "rollouts_per_proposal": 93}
    assert budget_line(preview).startswith("budget: at least 5 proposals (max_total_rollouts;")
    capped = {**preview, "limited_by": "max_proposals"}
    assert budget_line(capped) == "budget: up to 5 proposals (max_proposals)"
    unbounded = {**preview, "proposals": None, "limited_by": None}
    assert "no proposal limit" in budget_line(unbounded)


def test_a_readonly_replay_needs_no_model() -> None:
    config = REPO / "cookbooks" / "banking77" / "gepa.toml"
    recording = REPO / "cookbooks" / "banking77" / "replay" / "cache"
    env = {"GEPA_CLI_CACHE_MODE": "readonly", "GEPA_CLI_CACHE_PATH": str(recording)}
    result = run_cli("gepa", "validate", "-c", str(config), env=env)
    assert result.exit_code == 0, result.output
    assert "policy: offline: not checked: [cache] mode is readonly" in result.stdout
    assert "proposer: command {python} -m banking77_task.propose: not checked" in result.stdout
