"""A zero limit means "no limit" where the config shape we follow says so, and is refused
with the way to say "no limit" where it would stop the run before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gepa_cli.config import load_config
from gepa_cli.engine import EngineSettings
from gepa_cli.errors import ConfigError
from support.cli import run_cli
from support.task_dir import make_task_dir


@pytest.mark.parametrize("limit", ["max_cost_usd", "max_tokens", "max_wall_seconds"])
def test_zero_means_no_limit(tmp_path: Path, limit: str) -> None:
    config = make_task_dir(tmp_path, gepa={"max_total_rollouts": 150, limit: 0})
    loaded = load_config(config)
    assert getattr(loaded.gepa, limit) is None
    assert getattr(EngineSettings.from_mapping(loaded.gepa.model_dump()), limit) is None
    assert getattr(EngineSettings(max_total_rollouts=10, **{limit: 0}), limit) is None


def test_a_zero_cost_limit_runs_to_the_rollout_budget(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path / "task", gepa={"max_total_rollouts": 60, "max_cost_usd": 0.0})
    result = run_cli(
        "gepa", "run", "-c", str(config), "--output-dir", str(tmp_path / "runs"), "--json"
    )
    assert result.exit_code == 0, result.stderr
    assert '"stopped_by": "max_total_rollouts"' in result.stdout


@pytest.mark.parametrize("limit", ["max_total_rollouts", "max_train_rollouts", "max_proposals"])
def test_zero_where_it_would_stop_the_run_is_refused_with_how_to_say_no_limit(
    tmp_path: Path, limit: str
) -> None:
    config = make_task_dir(tmp_path, gepa={"max_total_rollouts": 150, limit: 0})
    with pytest.raises(ConfigError, match=f"leave {limit} out of \\[gepa\\]") as info:
        load_config(config)
    assert f"gepa.{limit}" in info.value.one_line()
    with pytest.raises(ConfigError, match=f"leave {limit} out"):
        EngineSettings(
            **{
                limit: 0,
                "max_cost_usd": 1.0,
                "est_cost_per_rollout_usd": 0.1,
                "est_cost_per_proposal_usd": 0.1,
            }
        )


def test_only_zero_limits_is_no_budget(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path, gepa={"max_total_rollouts": None, "max_cost_usd": 0})
    with pytest.raises(ConfigError, match=r"no budget is set.*means no limit"):
        load_config(config)
