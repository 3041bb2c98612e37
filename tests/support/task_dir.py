"""A ready-to-run task directory: the reference container, a deterministic proposer
program and a config, so end-to-end tests can drive `gepa-cli gepa run` for real.

Every test config is built here: `config_sections` merges overrides into a base (the
sample task by default), `write_config` writes it as TOML and `build_config` validates it
in memory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gepa_cli.config import GepaConfig, config_from_dict

SUPPORT = Path(__file__).resolve().parent

# what a suite's config fixture hands its tests: overrides per section -> a config
ConfigFactory = Callable[..., GepaConfig]

# Deterministic stand-in for an LLM proposer: it reads the reflective dataset and adds
# the first keyword the feedback says is missing (one per call, so runs take a while).
# GEPA_TEST_PROPOSER_DELAY makes it think that many seconds, as a model would.
PROPOSER = """
import json, os, re, sys, time
time.sleep(float(os.environ.get("GEPA_TEST_PROPOSER_DELAY", "0")))
request = json.load(sys.stdin)
text = request["current_text"]
missing = []
for record in request["reflective_dataset"]:
    found = re.search(r"Missing: (.*)\\.", record["feedback"] or "")
    if found:
        missing += [word.strip() for word in found.group(1).split(",")]
new = [word for word in sorted(set(missing)) if word not in text.lower()]
print("```\\n" + (text + " Mind " + new[0] + "." if new else text) + "\\n```")
"""

# Kills its own process (the gepa-cli run serving it in-process) at the k-th rollout,
# the harshest crash there is: no handler, no flush, no cleanup.
CRASHING_CONTAINER = """
import os, signal
from reference_container import create_app

app = create_app()
_after = int(os.environ.get("GEPA_TEST_KILL_AFTER_ROLLOUTS", "0"))
_seen = 0

@app.middleware("http")
async def crash(request, call_next):
    global _seen
    if request.url.path == "/rollout":
        _seen += 1
        if _after and _seen >= _after:
            os.kill(os.getpid(), signal.SIGKILL)
    return await call_next(request)
"""

# The reference task with a per-rollout latency, so a test can act while a run is busy.
SLOW_CONTAINER = """
import os
from reference_container import create_app

app = create_app(latency_seconds=float(os.environ.get("GEPA_TEST_ROLLOUT_LATENCY", "{latency}")))
"""

SECTIONS: dict[str, dict[str, Any]] = {
    "run": {"seed": 3},
    "container": {"app": "reference_container:app"},
    "dataset": {
        "train_split": "train",
        "train_seeds": "0:30",
        "val_seeds": "100:110",
        "heldout_split": "test",
        "heldout_seeds": "0:10",
    },
    "proposer": {"backend": "command", "command": ["{python}", "propose.py"], "input": "json"},
    "gepa": {"max_total_rollouts": 150, "minibatch_size": 3},
    "cache": {"mode": "readwrite", "path": "cache", "namespace": "ref"},
}
CONTAINER_KINDS = ("url", "app", "command")


def config_sections(
    base: dict[str, dict[str, Any]] | None = None, **overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """``base`` (default: the sample task) with ``overrides`` merged per section.

    A None value drops a key, and naming one of url, app or command in [container]
    drops the other two, so an override never leaves a container with two kinds.
    """
    merged: dict[str, dict[str, Any]] = {}
    base = SECTIONS if base is None else base
    for section in dict.fromkeys([*base, *overrides]):
        given = overrides.get(section, {})
        values = dict(base.get(section, {}))
        if section == "container" and any(given.get(kind) is not None for kind in CONTAINER_KINDS):
            values = {k: v for k, v in values.items() if k not in CONTAINER_KINDS}
        values.update(given)
        merged[section] = {key: value for key, value in values.items() if value is not None}
    return merged


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def config_toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def write_config(path: Path, **overrides: dict[str, Any]) -> Path:
    """Write the sample task's config with ``overrides`` (see `config_sections`)."""
    path.write_text(config_toml(config_sections(**overrides)), encoding="utf-8")
    return path


def build_config(
    base_dir: Path, base: dict[str, dict[str, Any]] | None = None, **overrides: dict[str, Any]
) -> GepaConfig:
    """The same config validated in memory, as `gepa run` would load it from ``base_dir``."""
    return config_from_dict(config_sections(base, **overrides), base_dir=base_dir, environ={})


def make_task_dir(
    root: Path, name: str = "gepa.toml", *, latency: float = 0.2, **overrides: dict[str, Any]
) -> Path:
    """Create ``root`` with the container, the proposer and a config; return the config.

    ``slow_container:app`` serves the task with ``latency`` seconds per rollout.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(SUPPORT / "reference_container.py", root / "reference_container.py")
    (root / "propose.py").write_text(PROPOSER, encoding="utf-8")
    (root / "crashing_container.py").write_text(CRASHING_CONTAINER, encoding="utf-8")
    (root / "slow_container.py").write_text(
        SLOW_CONTAINER.format(latency=latency), encoding="utf-8"
    )
    return write_config(root / name, **overrides)
