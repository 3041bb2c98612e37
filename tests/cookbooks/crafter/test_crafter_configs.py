"""The shipped configs validate and say what the README promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gepa_cli.cli.main import app

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "crafter"


def _validate(config: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["gepa", "validate", "--config", str(config), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    assert payload["ok"] is True
    return payload


def test_default_config_is_offline_and_its_seeds_fit_the_container() -> None:
    payload = _validate(COOKBOOK / "gepa.toml")  # starts the in-process container
    config = payload["config"]
    assert config["container"]["app"] == "crafter_task.container:app"
    assert config["policy"]["backend"] == "offline"
    proposer = config["proposer"]
    assert proposer["backend"] == "command" and proposer["input"] == "json"
    assert proposer["command"] == ["{python}", "-m", "crafter_task.propose"]
    sizes = payload["container"]["dataset"]
    for split in ("train", "val", "heldout"):
        assert sizes[split]["size"] == len(config["dataset"][f"{split}_seeds"])
    assert config["cache"]["namespace"] == "crafter"
    assert Path(config["cache"]["path"]) == COOKBOOK / ".cache"
    ignored = (COOKBOOK / ".gitignore").read_text(encoding="utf-8").split()
    assert "/.cache/" in ignored and "/runs/" in ignored


def test_replay_config_caps_episodes_and_replays_readonly() -> None:
    config = _validate(COOKBOOK / "gepa.replay.toml", "--skip-container")["config"]
    assert config["policy"]["params"] == {"max_steps": 30}
    assert config["cache"]["mode"] == "readonly"
    assert Path(config["cache"]["path"]) == COOKBOOK / "replay" / "cache"


def test_openai_config_validates_and_names_its_key() -> None:
    config = _validate(COOKBOOK / "gepa.openai.toml", "--skip-container")["config"]
    for section in ("policy", "proposer"):
        assert config[section]["backend"] == "openai_chat"
        assert config[section]["model"]
        assert config[section]["api_key_env"] == "OPENAI_API_KEY"
    assert config["policy"]["params"]["max_steps"] >= 1
    assert config["container"]["request_timeout_seconds"] >= 600


@pytest.mark.parametrize("name", ["gepa.toml", "gepa.openai.toml", "gepa.replay.toml"])
def test_configs_hold_no_key(name: str) -> None:
    assert not re.search(r"sk-[A-Za-z0-9_-]{8,}", (COOKBOOK / name).read_text(encoding="utf-8"))
