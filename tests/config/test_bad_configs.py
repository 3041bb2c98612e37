"""A table of bad configs: each must exit 2 with one line naming the offending field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gepa_cli.config import load_config
from gepa_cli.errors import ConfigError
from support.cli import run_cli

VALID = """
[run]
seed = 1

[container]
url = "http://127.0.0.1:9000"

[dataset]
train_seeds = "0:10"
val_seeds = [10, 11, 12]

[proposer]
backend = "command"
command = ["{python}", "-m", "proposer"]
input = "json"

[gepa]
max_total_rollouts = 100
"""


def _edit(base: str, section: str, line: str) -> str:
    """Insert ``line`` at the top of ``[section]`` (adding the section when missing)."""
    header = f"[{section}]"
    if header in base:
        return base.replace(header, f"{header}\n{line}", 1)
    return f"{base}\n{header}\n{line}\n"


def _drop(base: str, line: str) -> str:
    assert line in base
    return base.replace(line, "", 1)


# (id, toml text, field the message must name, extra text the message must contain)
CASES: list[tuple[str, str, str, str]] = [
    (
        "typo-gepa",
        _edit(VALID, "gepa", "max_total_rolouts = 10"),
        "gepa.max_total_rolouts",
        "max_total_rollouts",
    ),
    ("typo-run", _edit(VALID, "run", "sed = 3"), "run.sed", "seed"),
    (
        "typo-container",
        _edit(VALID, "container", "max_concurency = 4"),
        "container.max_concurency",
        "max_concurrency",
    ),
    ("unknown-section", VALID + "\n[gepaa]\nminibatch_size = 2\n", "gepaa", "gepa"),
    (
        "unknown-key-no-suggestion",
        _edit(VALID, "cache", "zzz = 1"),
        "cache.zzz",
        "valid keys in cache",
    ),
    (
        "nested-typo",
        _edit(VALID, "gepa.pipeline", "mdoe = 'sync_serial'"),
        "gepa.pipeline.mdoe",
        "mode",
    ),
    (
        "container-none",
        _drop(VALID, 'url = "http://127.0.0.1:9000"'),
        "container",
        "exactly one of url, app, command",
    ),
    (
        "container-two",
        _edit(VALID, "container", 'app = "pkg.mod:app"'),
        "container",
        "exactly one of url, app, command",
    ),
    (
        "container-bad-url",
        VALID.replace("http://127.0.0.1:9000", "localhost:9000"),
        "container.url",
        "http",
    ),
    (
        "container-bad-app",
        _drop(VALID, 'url = "http://127.0.0.1:9000"').replace(
            "[container]", '[container]\napp = "no_colon"'
        ),
        "container.app",
        "module:attribute",
    ),
    (
        "container-empty-command",
        _drop(VALID, 'url = "http://127.0.0.1:9000"').replace(
            "[container]", "[container]\ncommand = []"
        ),
        "container.command",
        "program",
    ),
    (
        "concurrency-zero",
        _edit(VALID, "container", "max_concurrency = 0"),
        "container.max_concurrency",
        "greater than or equal to 1",
    ),
    (
        "timeout-negative",
        _edit(VALID, "container", "request_timeout_seconds = -1"),
        "container.request_timeout_seconds",
        "greater than 0",
    ),
    ("seeds-bad-range", VALID.replace('"0:10"', '"10:0"'), "dataset.train_seeds", "empty"),
    (
        "seeds-bad-string",
        VALID.replace('"0:10"', '"zero to ten"'),
        "dataset.train_seeds",
        "start:stop",
    ),
    ("seeds-negative", VALID.replace("[10, 11, 12]", "[10, -1]"), "dataset.val_seeds", ">= 0"),
    (
        "seeds-float",
        VALID.replace("[10, 11, 12]", "[10, 1.5]"),
        "dataset.val_seeds",
        "whole numbers",
    ),
    ("seeds-repeat", VALID.replace("[10, 11, 12]", "[10, 10]"), "dataset.val_seeds", "repeat"),
    ("seeds-missing", _drop(VALID, 'train_seeds = "0:10"'), "dataset.train_seeds", "missing"),
    (
        "heldout-without-split",
        _edit(VALID, "dataset", "heldout_seeds = [1, 2]"),
        "dataset",
        "heldout_split",
    ),
    ("no-budget", _drop(VALID, "max_total_rollouts = 100"), "gepa", "no budget"),
    (
        "budget-zero",
        VALID.replace("max_total_rollouts = 100", "max_total_rollouts = 0"),
        "gepa.max_total_rollouts",
        "leave max_total_rollouts out of [gepa]",
    ),
    (
        "cost-without-estimate",
        _edit(VALID, "gepa", "max_cost_usd = 1.0"),
        "gepa",
        "est_cost_per_rollout_usd",
    ),
    (
        "cost-without-proposal-estimate",
        _edit(VALID, "gepa", "max_cost_usd = 1.0\nest_cost_per_rollout_usd = 0.001"),
        "gepa",
        "est_cost_per_proposal_usd",
    ),
    (
        "tokens-without-estimate",
        _edit(VALID, "gepa", "max_tokens = 1000"),
        "gepa",
        "est_tokens_per_rollout",
    ),
    (
        "time-without-estimate",
        _edit(VALID, "gepa", "max_wall_seconds = 60"),
        "gepa",
        "est_seconds_per_rollout",
    ),
    (
        "bad-selector",
        _edit(VALID, "gepa", 'candidate_selector = "best"'),
        "gepa.candidate_selector",
        "pareto",
    ),
    (
        "bad-frontier",
        _edit(VALID, "gepa", 'frontier_type = "global"'),
        "gepa.frontier_type",
        "instance",
    ),
    (
        "bad-acceptance",
        _edit(VALID, "gepa", 'acceptance = "always"'),
        "gepa.acceptance",
        "strict_improvement",
    ),
    (
        "minibatch-zero",
        _edit(VALID, "gepa", "minibatch_size = 0"),
        "gepa.minibatch_size",
        "greater than or equal to 1",
    ),
    (
        "minibatch-string",
        _edit(VALID, "gepa", 'minibatch_size = "three"'),
        "gepa.minibatch_size",
        "integer",
    ),
    (
        "proposer-command-missing",
        _drop(VALID, 'command = ["{python}", "-m", "proposer"]'),
        "proposer",
        "command",
    ),
    (
        "proposer-openai-no-model",
        VALID.replace('backend = "command"', 'backend = "openai_chat"'),
        "proposer",
        "model",
    ),
    (
        "proposer-bad-backend",
        VALID.replace('backend = "command"', 'backend = "magic"'),
        "proposer.backend",
        "openai_chat",
    ),
    (
        "proposer-bad-input",
        VALID.replace('input = "json"', 'input = "yaml"'),
        "proposer.input",
        "text",
    ),
    (
        "secret-key-value",
        _edit(VALID, "proposer", 'api_key = "sk-abcdefghijklmnopqrstuvwx"'),
        "proposer.api_key",
        "api_key_env",
    ),
    (
        "secret-in-env-name",
        _edit(VALID, "policy", 'api_key_env = "sk-abcdefghijklmnopqrstuvwx"'),
        "policy.api_key_env",
        "api_key_env",
    ),
    (
        "secret-token-key",
        _edit(VALID, "container", 'token = "hunter2"'),
        "container.token",
        "api_key_env",
    ),
    (
        "env-name-invalid",
        _edit(VALID, "container", 'api_key_env = "my key"'),
        "container.api_key_env",
        "environment variable name",
    ),
    ("cache-bad-mode", _edit(VALID, "cache", 'mode = "sometimes"'), "cache.mode", "readonly"),
    (
        "cache-readonly-missing",
        _edit(VALID, "cache", 'mode = "readonly"\npath = "nowhere"'),
        "cache.path",
        "readonly",
    ),
    (
        "cache-bad-namespace",
        _edit(VALID, "cache", 'namespace = "a b"'),
        "cache.namespace",
        "namespace",
    ),
    ("run-id-bad", _edit(VALID, "run", 'run_id = "../escape"'), "run.run_id", "run id"),
    (
        "seed-negative",
        VALID.replace("seed = 1", "seed = -1"),
        "run.seed",
        "greater than or equal to 0",
    ),
    (
        "seed-candidate-not-text",
        _edit(VALID, "seed_candidate", "system_prompt = 3"),
        "seed_candidate.system_prompt",
        "string",
    ),
    (
        "target-modules-empty",
        _edit(VALID, "candidate", "target_modules = []"),
        "candidate.target_modules",
        "empty",
    ),
    (
        "temperature-high",
        _edit(VALID, "policy", "temperature = 5"),
        "policy.temperature",
        "less than or equal to 2",
    ),
    ("not-toml", "this is [not toml", "not valid TOML", "line"),
]


@pytest.mark.parametrize(
    ("text", "field", "extra"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_config_exits_2_naming_the_field(
    tmp_path: Path, text: str, field: str, extra: str
) -> None:
    config = tmp_path / "gepa.toml"
    config.write_text(text)
    result = run_cli("gepa", "validate", "--config", str(config), "--skip-container")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error [config_error]: ")
    assert field in lines[0]
    assert extra in lines[0]
    assert "Traceback" not in result.output
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.error_code == "config_error"


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_valid_config_loads(tmp_path: Path) -> None:
    config = tmp_path / "gepa.toml"
    config.write_text(VALID)
    loaded = load_config(config)
    assert loaded.dataset.train_seeds == list(range(10))
    assert loaded.dataset.resolved_val_seeds == [10, 11, 12]
    assert loaded.gepa.max_total_rollouts == 100
    assert loaded.cache.mode == "off"
