"""Real runs for the show, diff and report tests, made once per session (view_runs.py
says what each one is)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from view_runs import (
    FAILING_PROPOSER,
    FOCUS_PROPOSER,
    LOCAL_MODEL,
    TWO_MODULES,
    Run,
    SmallRun,
    execute,
    keyword_model,
    serve,
)

from gepa_cli.view import write_report
from support.checks import replay_check
from support.task_dir import make_task_dir, write_config


@pytest.fixture(scope="session")
def model_url() -> Iterator[str]:
    yield from serve(keyword_model())


@pytest.fixture(scope="session")
def task(tmp_path_factory: pytest.TempPathFactory, model_url: str) -> Path:
    root = tmp_path_factory.mktemp("view-task")
    config = make_task_dir(root, gepa={"max_total_rollouts": 120}, cache={"mode": "off"})
    (root / "two_modules.py").write_text(TWO_MODULES, encoding="utf-8")
    (root / "focus_propose.py").write_text(FOCUS_PROPOSER, encoding="utf-8")
    (root / "failing_propose.py").write_text(FAILING_PROPOSER, encoding="utf-8")
    write_config(
        root / "merges.toml",
        run={"seed": 1},
        container={"app": "two_modules:app"},
        proposer={"command": ["{python}", "focus_propose.py"]},
        gepa={
            "max_total_rollouts": 210,
            "use_merge": True,
            # merges need frontier members that improved different modules: every
            # passing child validated, as plain GEPA does
            "validation": "full",
            "heldout_candidates": "frontier",
            "max_heldout_candidates": 2,
        },
        cache={"mode": "off"},
    )
    write_config(
        root / "unpriced.toml",
        proposer={
            "backend": "openai_chat",
            "model": LOCAL_MODEL,
            "base_url": model_url,
            "command": None,
            "input": None,
        },
        cache={"mode": "off"},
    )
    write_config(
        root / "failing.toml",
        proposer={"command": ["{python}", "failing_propose.py"]},
        gepa={"max_consecutive_proposer_failures": 2},
        cache={"mode": "off"},
    )
    write_config(
        root / "down.toml",
        container={"app": None, "url": "http://127.0.0.1:9", "startup_timeout_seconds": 0.5},
    )
    return config


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("view-runs")


@pytest.fixture(scope="session")
def small(task: Path, runs_dir: Path) -> SmallRun:
    running_report = runs_dir / "running-report.html"
    checkpoints = []

    def render_mid_run(event: Mapping[str, Any]) -> None:
        if event["type"] == "checkpoint":
            checkpoints.append(event["seq"])
        # the iteration after the third checkpoint: that checkpoint is on disk, the
        # events since are still buffered, as in any run caught mid-flight
        if event["type"] == "iteration.started" and len(checkpoints) == 3:
            write_report([runs_dir / "small"], running_report)

    path = execute(task, "small", runs_dir, render_mid_run)
    assert running_report.is_file(), "the listener never rendered the running run"
    replay_check(path)
    return SmallRun(path, running_report)


@pytest.fixture(scope="session")
def stopped(task: Path, runs_dir: Path) -> Run:
    accepted = []

    def stop_after_two_children(event: Mapping[str, Any]) -> None:
        if event["type"] == "candidate.accepted":
            accepted.append(event["seq"])
            if len(accepted) == 2:
                (runs_dir / "stopped" / "STOP").touch()

    run = Run(execute(task.parent / "unpriced.toml", "stopped", runs_dir, stop_after_two_children))
    assert run.manifest["state"] == "stopped" and run.manifest["stopped_by"] == "stop_file"
    replay_check(run.path)
    return run


@pytest.fixture(scope="session")
def merges(task: Path, runs_dir: Path) -> Run:
    run = Run(execute(task.parent / "merges.toml", "merges", runs_dir))
    origins = [row["origin"] for row in run.ledger("candidates.jsonl")]
    assert "merge" in origins, origins
    replay_check(run.path)
    return run


@pytest.fixture(scope="session")
def failed(task: Path, runs_dir: Path) -> Run:
    run = Run(execute(task.parent / "failing.toml", "failed", runs_dir, fails=True))
    assert run.manifest["state"] == "failed", run.manifest["state"]
    replay_check(run.path)
    return run


@pytest.fixture(scope="session")
def down(task: Path, runs_dir: Path) -> Run:
    run = Run(execute(task.parent / "down.toml", "down", runs_dir, fails=True))
    assert run.manifest["state"] == "failed" and run.manifest["budget"] is None
    return run
