"""gepa run on Crafter: three launch modes, the objective and hybrid frontiers, queries.

The runs use a tiny config (episodes of 25 steps on a few worlds) in a temporary folder;
the container and the proposer come from the cookbook, put on sys.path by the conftest
and on PYTHONPATH here for the child processes (the proposer, the command container).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from gepa_cli.cli.main import app as cli
from gepa_cli.runtime.container import free_port
from gepa_cli.runtime.container.inprocess import UvicornThread
from gepa_cli.workspace import workspace_status
from support.checks import replay_check
from support.cli import run_cli

TINY = """\
[run]
seed = 1

[container]
{container}

[dataset]
train_split = "train"
val_split = "val"
heldout_split = "heldout"
train_seeds = "0:6"
val_seeds = "0:3"
heldout_seeds = "0:2"

[policy]
backend = "offline"

[policy.params]
max_steps = 25

[proposer]
backend = "command"
command = ["{{python}}", "-m", "crafter_task.propose"]
input = "json"

[gepa]
max_total_rollouts = {budget}
minibatch_size = 3
validation = "full"
minibatch_schedule = "fixed"
frontier_type = "{frontier}"
"""
APP = 'app = "crafter_task.container:app"'


@pytest.fixture(autouse=True)
def cookbook_on_path(cookbook_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    parts = [str(cookbook_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(parts))
    return cookbook_dir


def write_config(
    root: Path, name: str, container: str = APP, frontier: str = "instance", budget: int = 30
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.toml"
    path.write_text(TINY.format(container=container, frontier=frontier, budget=budget))
    return path


def run(config: Path, runs: Path, run_id: str) -> tuple[Path, dict[str, Any]]:
    result = CliRunner().invoke(
        cli,
        [
            "gepa", "run", "--config", str(config), "--run-id", run_id,
            "--output-dir", str(runs), "--cache-mode", "off", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    replay_check(runs / run_id)
    return runs / run_id, json.loads(result.stdout)


def query(sql: str, runs: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["query", sql, "--runs", str(runs / "*"), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_three_launch_modes_give_one_feed(tmp_path: Path, cookbook_on_path: Path) -> None:
    runs = tmp_path / "runs"
    # budget for the seed, one reflection and the heldout evaluation
    feeds = {"app": run(write_config(tmp_path, "app", budget=20), runs, "app")[0]}
    command = 'command = ["{python}", "-m", "crafter_task.container", "--port", "{port}"]'
    config = write_config(tmp_path, "command", command, budget=20)
    feeds["command"] = run(config, runs, "command")[0]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "crafter_task.container", "--port", str(port)],
        cwd=cookbook_on_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the standalone container did not start"
            time.sleep(0.05)
        url = write_config(tmp_path, "url", f'url = "http://127.0.0.1:{port}"', budget=20)
        feeds["url"] = run(url, runs, "url")[0]
    finally:
        server.terminate()
        server.wait(timeout=10)
    normalized = {mode: (d / "events.normalized.jsonl").read_bytes() for mode, d in feeds.items()}
    assert normalized["app"] == normalized["command"] == normalized["url"]
    assert b'"candidate.accepted"' in normalized["app"]


@pytest.mark.parametrize("frontier", ["objective", "hybrid"])
def test_objective_and_hybrid_frontiers(tmp_path: Path, frontier: str) -> None:
    runs = tmp_path / "runs"
    run_dir, facts = run(write_config(tmp_path, frontier, frontier=frontier), runs, frontier)
    assert facts["state"] == "finished"
    saved = json.loads((run_dir / "frontier.json").read_text())
    assert saved["frontier_type"] == frontier
    objective_keys = {k for k in saved["frontier"] if k.startswith("objective:")}
    assert objective_keys == {f"objective:{g}" for g in ("collect", "place", "make", "survive")}
    example_keys = {k for k in saved["frontier"] if k.startswith("example:")}
    if frontier == "hybrid":
        assert example_keys == {"example:val:0", "example:val:1", "example:val:2"}
    else:
        assert not example_keys and len(saved["frontier"]) == 4
    # each objective front holds the candidates with the best validation mean of that group
    candidates = {c["candidate_id"]: c for c in query("SELECT * FROM candidates", runs)}
    for key, members in saved["frontier"].items():
        if key.startswith("objective:"):
            name = key.split(":", 1)[1]
            best = max(json.loads(c["objective_means"])[name] for c in candidates.values())
            for cid in members:
                assert json.loads(candidates[cid]["objective_means"])[name] == best


def test_query_and_workspace_status_show_per_objective_scores(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run(write_config(tmp_path, "query"), runs, "query")
    per_candidate = query(
        "SELECT candidate_id, val_mean, "
        "CAST(objective_means->>'$.collect' AS DOUBLE) AS collect, "
        "CAST(objective_means->>'$.place' AS DOUBLE) AS place, "
        "CAST(objective_means->>'$.make' AS DOUBLE) AS make, "
        "CAST(objective_means->>'$.survive' AS DOUBLE) AS survive "
        "FROM candidates ORDER BY candidate_id",
        runs,
    )
    assert per_candidate and per_candidate[0]["candidate_id"] == "c0000"
    for row in per_candidate:
        # the groups hold 7, 4, 6 and 5 of the 22 achievements
        total = 7 * row["collect"] + 4 * row["place"] + 6 * row["make"] + 5 * row["survive"]
        assert total / 22 == pytest.approx(row["val_mean"])
    per_rollout = query(
        "SELECT split, avg(CAST(objectives->>'$.collect' AS DOUBLE)) AS collect, count(*) AS n "
        "FROM rollouts GROUP BY split ORDER BY split",
        runs,
    )
    assert {r["split"] for r in per_rollout} == {"train", "val", "heldout"}
    assert all(0 <= r["collect"] <= 1 for r in per_rollout)

    # workspace status: the seed's and the best's validation means per achievement group
    ledger = {
        row["candidate_id"]: json.loads(row["objective_means"])
        for row in query("SELECT candidate_id, objective_means FROM candidates", runs)
    }
    groups = ["collect", "place", "make", "survive"]
    (status,) = workspace_status(runs).runs
    assert sorted(status.seed_objective_means) == sorted(groups)
    assert status.seed_objective_means == pytest.approx(ledger["c0000"])
    assert status.best_candidate_id in ledger
    assert status.best_objective_means == pytest.approx(ledger[status.best_candidate_id])
    shown = run_cli("workspace", "status", str(runs), "--json")
    assert shown.exit_code == 0, shown.output
    (as_json,) = json.loads(shown.stdout)["runs"]
    assert as_json["seed_objective_means"] == pytest.approx(ledger["c0000"])
    assert as_json["best_objective_means"] == pytest.approx(ledger[status.best_candidate_id])
    table = run_cli("workspace", "status", str(runs), "--details")
    assert table.exit_code == 0, table.output
    best = status.best_objective_means
    for group in groups:
        # the runs table's cell, then the details row: seed, best, change
        assert f"{group} {best[group]:.3f}" in table.stderr
        seed = status.seed_objective_means[group]
        row = f"{group} {seed:.3f} {best[group]:.3f} {best[group] - seed:+.3f}"
        assert row in " ".join(table.stderr.replace("│", " ").split()), table.stderr


def fake_model() -> FastAPI:
    """An OpenAI-compatible endpoint that plays Crafter a little: it chops what it faces
    and walks toward the nearest tree named in the observation."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen = body["messages"][-1]["content"]
        near = re.search(r"Near: tree (\d+) (left|right|up|down)", seen)
        if re.search(r"You face \w+: tree\.", seen):
            answer = "do"
        elif near:
            answer = f"I will move {near.group(2)}."
        else:
            answer = "move_left"
        return {
            "choices": [{"message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": len(seen) // 4, "completion_tokens": 2},
        }

    return app


def test_openai_chat_run_records_token_usage(tmp_path: Path) -> None:
    server = UvicornThread(fake_model())
    url = server.start()
    try:
        config = write_config(tmp_path, "chat", budget=20)
        text = config.read_text().replace(
            '[policy]\nbackend = "offline"',
            f'[policy]\nbackend = "openai_chat"\nmodel = "fake"\nbase_url = "{url}/v1"',
        )
        config.write_text(text.replace("max_steps = 25", "max_steps = 8"))
        run_dir, facts = run(config, tmp_path / "runs", "chat")
    finally:
        server.stop()
    assert facts["state"] == "finished"
    rows = query(
        "SELECT split, count(*) AS n, min(usage.prompt_tokens) AS least, "
        "sum(usage.completion_tokens) AS completion, bool_and(usage.cost_known) AS known, "
        "max(CAST(objectives->>'$.collect' AS DOUBLE)) AS collect "
        "FROM rollouts GROUP BY split",
        tmp_path / "runs",
    )
    assert {r["split"] for r in rows} == {"train", "val", "heldout"}
    for r in rows:
        assert r["least"] > 8 * 100  # eight calls of a few hundred prompt tokens each
        assert r["completion"] == 8 * 2 * r["n"]
        assert r["known"] is False  # a model's price is not known to the container
    assert max(r["collect"] for r in rows) > 0  # the fake model does collect wood
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["cost_known"] is False
