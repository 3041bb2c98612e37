"""The cookbook's shipped configs validate and say what the docs promise they say."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from support.cli import run_cli

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "banking77"
REPO = COOKBOOK.parents[1]


def _validate(config: Path, *extra: str) -> dict[str, Any]:
    result = run_cli("gepa", "validate", "--config", str(config), "--json", *extra)
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    assert payload["ok"] is True
    return payload


def test_default_config_validates_offline() -> None:
    config = _validate(COOKBOOK / "gepa.toml", "--skip-container")["config"]
    # its own process, the faster launch (bench/results/pipeline_throughput.md)
    assert config["container"]["command"] == [
        "{python}",
        "-m",
        "banking77_task.container",
        "--port",
        "{port}",
    ]
    assert config["policy"]["backend"] == "offline"
    proposer = config["proposer"]
    assert proposer["backend"] == "command"
    assert proposer["command"] == ["{python}", "-m", "banking77_task.propose"]
    assert proposer["input"] == "json"
    dataset = config["dataset"]
    assert (dataset["train_split"], dataset["val_split"], dataset["heldout_split"]) == (
        "train",
        "val",
        "heldout",
    )
    assert dataset["val_seeds"] and dataset["heldout_seeds"]
    cache = config["cache"]
    assert cache["mode"] == "readwrite"
    assert cache["namespace"] == "banking77"
    # under the cookbook, where its .gitignore keeps it out of git
    assert Path(cache["path"]) == COOKBOOK / ".cache"
    ignored = (COOKBOOK / ".gitignore").read_text(encoding="utf-8").split()
    assert "/.cache/" in ignored and "/runs/" in ignored
    assert config["gepa"]["max_total_rollouts"] is not None


def test_default_config_seeds_fit_the_container_splits() -> None:
    """Starts the container: every seed range must exist in the sample."""
    payload = _validate(COOKBOOK / "gepa.toml")
    dataset = payload["container"]["dataset"]
    config = payload["config"]["dataset"]
    assert dataset["train"]["size"] == len(config["train_seeds"])
    assert dataset["val"]["size"] == len(config["val_seeds"])
    assert dataset["heldout"]["size"] == len(config["heldout_seeds"])


def test_openai_config_validates_and_names_its_key() -> None:
    config = _validate(COOKBOOK / "gepa.openai.toml", "--skip-container")["config"]
    for section in ("policy", "proposer"):
        assert config[section]["backend"] == "openai_chat"
        assert config[section]["model"]
        assert config[section]["base_url"].startswith("https://")
        assert config[section]["api_key_env"] == "OPENAI_API_KEY"
    assert config["container"]["app"] == "banking77_task.container:app"
    assert config["cache"]["namespace"] == "banking77"


@pytest.mark.parametrize("name", ["gepa.toml", "gepa.openai.toml"])
def test_configs_hold_no_key(name: str) -> None:
    text = (COOKBOOK / name).read_text(encoding="utf-8")
    assert not re.search(r"sk-[A-Za-z0-9_-]{8,}", text)


def test_make_demo_runs_the_default_config() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^demo: \$\(STAMP\)\n((?:\t.*\n)+)", makefile, re.M)
    assert match, "Makefile has no `demo: $(STAMP)` target"
    recipe = match.group(1)
    assert "gepa run --config cookbooks/banking77/gepa.toml" in recipe
    assert "--output-dir runs/demo" in recipe
    assert re.search(r"^/runs/$", (REPO / ".gitignore").read_text(encoding="utf-8"), re.M)
