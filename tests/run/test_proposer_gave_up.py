"""A run the proposer gives up on still reports what it found, and says how to go on
(issue 20, item 4): seed and best scores, heldout of both if the budget allows, a
summary, and the exact command that continues it."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from support.cli import run_cli
from support.task_dir import PROPOSER, make_task_dir

# A model server that is down: every call fails. Replaced by the real proposer to "fix" it.
DOWN = "import sys\nsys.stderr.write('model server unavailable\\n')\nsys.exit(3)\n"


def _run(config: Path, runs: Path, *extra: str) -> Result:
    return run_cli(
        "gepa", "run", "--config", str(config), "--run-id", "r", "--output-dir", str(runs), *extra
    )


def test_a_run_stopped_by_proposer_failures_reports_heldout_and_how_to_continue(
    tmp_path: Path,
) -> None:
    gepa = {"max_total_rollouts": 150, "max_consecutive_proposer_failures": 3}
    config = make_task_dir(tmp_path / "task", gepa=gepa, cache={"mode": "off"})
    (config.parent / "propose.py").write_text(DOWN)
    runs = tmp_path / "runs"
    result = _run(config, runs)
    assert result.exit_code == 1, result.output
    stderr = result.stderr

    manifest = orjson.loads((runs / "r" / "manifest.json").read_bytes())
    assert (manifest["state"], manifest["stopped_by"]) == ("failed", "proposer_failures")
    # the seed (also the best so far) was scored on heldout before the run gave up
    assert manifest["seed_candidate"]["heldout_mean"] is not None
    assert manifest["best_candidate"]["heldout_mean"] == manifest["seed_candidate"]["heldout_mean"]
    assert manifest["budget"]["rollouts"]["heldout"] == 10
    events = [json.loads(line) for line in (runs / "r" / "events.jsonl").open()]
    assert [e["type"] for e in events][-2:] == ["heldout.completed", "run.finished"]

    # the summary, then one error line that says what to type next
    summary = stderr[: stderr.index("error [")]
    assert "run r failed (stopped by proposer_failures)" in summary
    assert f"heldout:    seed {manifest['seed_candidate']['heldout_mean']:.3f}" in summary
    assert "proposals:  3 (error 3)" in summary
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("error [")]
    assert "model server unavailable" in line
    assert f"`gepa-cli gepa resume {runs / 'r'}`" in line

    # doing what it says: the proposer is back, and the run goes on to its end
    (config.parent / "propose.py").write_text(PROPOSER)
    resumed = run_cli("gepa", "resume", str(runs / "r"))
    assert resumed.exit_code == 0, resumed.output
    assert orjson.loads((runs / "r" / "manifest.json").read_bytes())["state"] == "finished"


@pytest.mark.parametrize("mode", ["sync_serial", "async_pipelined"])
def test_the_json_summary_comes_with_a_failed_run_too(tmp_path: Path, mode: str) -> None:
    gepa = {"max_total_rollouts": 150, "max_consecutive_proposer_failures": 2}
    config = make_task_dir(
        tmp_path / "task",
        gepa=gepa,
        cache={"mode": "off"},
        **{"gepa.pipeline": {"mode": mode}},
    )
    (config.parent / "propose.py").write_text(DOWN)
    result = _run(config, tmp_path / "runs", "--json")
    assert result.exit_code == 1
    facts = json.loads(result.stdout)
    assert (facts["state"], facts["stopped_by"]) == ("failed", "proposer_failures")
    assert facts["seed_heldout_mean"] is not None
    assert facts["error"]["error_code"] == "proposer_error"


def test_answers_cut_at_max_tokens_say_raise_max_tokens(tmp_path: Path) -> None:
    from gepa_cli.engine.reflection import give_up_hint

    assert "raise [proposer] max_tokens" in give_up_hint(["no_fence", "truncated"])
    assert "max_tokens" not in give_up_hint(["truncated", "no_fence"])
    assert "gepa-cli gepa resume" in give_up_hint(["proposer command 'x' exited with status 3"])
