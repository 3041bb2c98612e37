"""Environment and flag overrides apply after the file and are validated the same way."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gepa_cli.config import load_config
from gepa_cli.errors import ConfigError
from support.cli import run_cli

CONFIG = """
[run]
output_dir = "out"

[container]
url = "http://127.0.0.1:9000"

[dataset]
train_seeds = [0, 1, 2]

[proposer]
command = ["prop"]

[cache]
path = "recording"

[gepa]
max_total_rollouts = 10
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "gepa.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    return path


def test_file_paths_resolve_against_the_config_directory(config: Path) -> None:
    loaded = load_config(config)
    assert loaded.run.output_dir == config.parent.resolve() / "out"
    assert loaded.cache.path == config.parent.resolve() / "recording"
    assert loaded.dataset.resolved_val_seeds == [0, 1, 2]


def test_env_overrides_apply_after_the_file(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache-dir"
    cache.mkdir()
    monkeypatch.setenv("GEPA_CLI_RUN_ID", "ci-run-1")
    monkeypatch.setenv("GEPA_CLI_CACHE_MODE", "readonly")
    monkeypatch.setenv("GEPA_CLI_CACHE_PATH", str(cache))
    monkeypatch.setenv("GEPA_CLI_OUTPUT_DIR", "elsewhere")
    loaded = load_config(config)
    assert loaded.run.run_id == "ci-run-1"
    assert loaded.cache.mode == "readonly"
    assert loaded.cache.path == cache
    assert loaded.run.output_dir == Path.cwd() / "elsewhere"


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("GEPA_CLI_CACHE_MODE", "sometimes", "cache.mode"),
        ("GEPA_CLI_RUN_ID", "has space", "run.run_id"),
        ("GEPA_CLI_PROPOSER_BACKEND", "oracle", "proposer.backend"),
    ],
)
def test_bad_env_override_names_field_and_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert field in str(info.value)
    assert var in str(info.value)


def test_readonly_override_without_cache_dir_is_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEPA_CLI_CACHE_MODE", "readonly")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "cache.path" in str(info.value)
    assert "GEPA_CLI_CACHE_MODE" in str(info.value)


def test_flag_overrides_win_over_env(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPA_CLI_RUN_ID", "from-env")
    loaded = load_config(config, overrides={"run.run_id": "from-flag"})
    assert loaded.run.run_id == "from-flag"


def test_validate_prints_resolved_config_as_json(config: Path) -> None:
    result = run_cli("gepa", "validate", "--config", str(config), "--json", "--skip-container")
    assert result.exit_code == 0, result.output
    assert '"max_total_rollouts": 10' in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("gepa-cli ")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    quiet = run_cli("gepa", "validate", "--config", str(missing))
    assert quiet.exit_code == 2
    assert "Traceback" not in quiet.stderr
    loud = run_cli("--debug", "gepa", "validate", "--config", str(missing))
    assert loud.exit_code == 2
    assert "Traceback" in loud.stderr


def test_validate_warns_when_the_budget_allows_fewer_than_three_proposals(
    config: Path,
) -> None:
    config.write_text(CONFIG.replace("max_total_rollouts = 10", "max_total_rollouts = 12"))
    result = run_cli("gepa", "validate", "--config", str(config), "--json", "--skip-container")
    assert result.exit_code == 0, result.output
    assert "warning: the budget guarantees only" in result.stderr
    preview = orjson.loads(result.stdout)["budget_preview"]
    assert preview["proposals"] < 3 and preview["limited_by"] == "max_total_rollouts"

    config.write_text(CONFIG.replace("max_total_rollouts = 10", "max_total_rollouts = 500"))
    roomy = run_cli("gepa", "validate", "--config", str(config), "--json", "--skip-container")
    assert "warning" not in roomy.stderr
    assert orjson.loads(roomy.stdout)["budget_preview"]["proposals"] >= 3
