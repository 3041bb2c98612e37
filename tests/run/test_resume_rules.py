"""What a resume may change is one rule: a hint the engine gives can be followed."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gepa_cli.config import load_config
from gepa_cli.engine.settings import RESUMABLE_FIELDS
from gepa_cli.errors import ResumeError
from gepa_cli.runner.resume import check_compatible
from support.cli import run_cli
from support.task_dir import PROPOSER, make_task_dir, write_config

# Fails its first few calls (a model server that was down for a while), then answers
# like the task's usual proposer; the count lives next to it, so it survives the resume.
FLAKY_PROPOSER = (
    """
import pathlib, sys
count = pathlib.Path(__file__).with_name("calls.txt")
calls = int(count.read_text()) if count.exists() else 0
count.write_text(str(calls + 1))
if calls < 4:
    sys.stderr.write("model server unavailable\\n")
    sys.exit(3)
"""
    + PROPOSER
)


def _run(*args: str) -> tuple[int, str]:
    result = run_cli(*args)
    return result.exit_code, result.stderr


def test_raising_max_consecutive_proposer_failures_on_resume_follows_the_engines_hint(
    tmp_path: Path,
) -> None:
    gepa = {"max_total_rollouts": 120, "max_consecutive_proposer_failures": 3}
    config = make_task_dir(tmp_path / "task", gepa=gepa, cache={"mode": "off"})
    (config.parent / "propose.py").write_text(FLAKY_PROPOSER)
    runs = tmp_path / "runs"
    code, stderr = _run(
        "gepa", "run", "-c", str(config), "--run-id", "r", "--output-dir", str(runs)
    )
    assert code == 1
    assert "raise [gepa] max_consecutive_proposer_failures" in stderr
    write_config(config, gepa={**gepa, "max_consecutive_proposer_failures": 10})
    code, stderr = _run("gepa", "resume", str(runs / "r"), "--config", str(config))
    assert code == 0, stderr
    manifest = orjson.loads((runs / "r" / "manifest.json").read_bytes())
    assert manifest["state"] == "finished"
    assert manifest["budget"]["proposals"] >= 5  # the four failures, then real proposals


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("max_consecutive_proposer_failures", 9, True),
        ("est_seconds_per_rollout", 0.5, True),
        ("max_total_rollouts", 500, True),
        ("stop_at_score", 0.9, True),
        ("minibatch_size", 5, False),
        ("max_merge_invocations", 9, False),
        ("candidate_selector", "current_best", False),
    ],
)
def test_the_runner_allows_exactly_what_the_engine_allows(
    tmp_path: Path, field: str, value: object, allowed: bool
) -> None:
    make_task_dir(tmp_path)
    recorded = load_config(write_config(tmp_path / "a.toml"))
    current_path = write_config(tmp_path / "b.toml", gepa={field: value})
    current = load_config(current_path)
    assert (field in RESUMABLE_FIELDS) is allowed
    if allowed:
        check_compatible(recorded, current, current_path)
    else:
        with pytest.raises(ResumeError, match=f"gepa.{field}"):
            check_compatible(recorded, current, current_path)
