"""The cookbook's configs validate and say what its README says they say."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gepa_cli.cli.main import app

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "code_review"
OFFLINE = ("gepa.toml", "gepa.hybrid.toml")


def _validate(config: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["gepa", "validate", "--config", str(config), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    assert payload["ok"] is True
    return payload


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_configs(name: str) -> None:
    config = _validate(COOKBOOK / name, "--skip-container")["config"]
    assert config["container"]["app"] == "code_review_task.container:app"
    assert config["policy"]["backend"] == "offline"
    proposer = config["proposer"]
    assert proposer["command"] == ["{python}", "-m", "code_review_task.propose"]
    assert (proposer["backend"], proposer["input"]) == ("command", "json")
    cache = config["cache"]
    assert (cache["mode"], cache["namespace"]) == ("readwrite", "code_review")
    assert Path(cache["path"]) == COOKBOOK / ".cache"
    ignored = (COOKBOOK / ".gitignore").read_text(encoding="utf-8").split()
    assert "/.cache/" in ignored and "/runs/" in ignored
    assert config["gepa"]["frontier_type"] == {"gepa.toml": "objective"}.get(name, "hybrid")


def test_the_two_offline_configs_differ_only_in_the_frontier() -> None:
    configs = [_validate(COOKBOOK / n, "--skip-container")["config"] for n in OFFLINE]
    for c in configs:
        c["gepa"].pop("frontier_type")
    assert configs[0] == configs[1]


def test_default_config_uses_every_diff_of_the_container() -> None:
    """Starts the in-process container: the seed ranges cover each split exactly."""
    payload = _validate(COOKBOOK / "gepa.toml")
    sizes = payload["container"]["dataset"]
    config = payload["config"]["dataset"]
    for split in ("train", "val", "heldout"):
        assert sizes[split]["size"] == len(config[f"{split}_seeds"]), split


def test_openai_config_names_its_key_and_asks_for_json() -> None:
    config = _validate(COOKBOOK / "gepa.openai.toml", "--skip-container")["config"]
    for section in ("policy", "proposer"):
        assert config[section]["backend"] == "openai_chat"
        assert config[section]["base_url"].startswith("https://")
        assert config[section]["api_key_env"] == "OPENAI_API_KEY"
    assert config["policy"]["params"] == {"response_format": {"type": "json_object"}}
    assert config["gepa"]["frontier_type"] == "objective"


@pytest.mark.parametrize("name", [*OFFLINE, "gepa.openai.toml"])
def test_configs_hold_no_key(name: str) -> None:
    text = (COOKBOOK / name).read_text(encoding="utf-8")
    assert not re.search(r"sk-[A-Za-z0-9_-]{8,}", text)
