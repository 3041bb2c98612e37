"""The container speaks contract v1; a broken episode is a failed rollout, not a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from crafter_task import container
from crafter_task.container import create_app
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gepa_cli.cli.main import app as cli


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(create_app()) as c:
        yield c


def rollout_body(
    client: TestClient, split: str = "train", seed: int = 0, **extra: Any
) -> dict[str, Any]:
    row = client.post("/dataset/rows", json={"split": split, "seeds": [seed]}).json()["rows"][0]
    body: dict[str, Any] = {
        "task_id": "crafter",
        "candidate": {"instructions": "- place table\n- collect wood\n- explore"},
        "policy": {"backend": "offline", "params": {"max_steps": 40}},
        "dataset_row": row,
        "metadata": {"candidate_id": "c0000", "split": split, "seed": seed},
    }
    body.update(extra)
    return body


def test_routes_conform_to_the_contract(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "contract_version": "gepa_cli.container.v1",
    }
    meta = client.get("/metadata").json()
    routes = meta["metadata"]["optimizer_contracts"]["gepa"]
    assert routes["version"] == "gepa_cli.container.v1"
    for key in ("program_route", "dataset_route", "dataset_rows_route", "rollout_route"):
        assert routes[key].startswith("/")
    program = client.get("/program").json()
    assert program["program_id"] == "crafter"
    assert program["target_modules"] == [
        {"module_id": "agent", "candidate_field": "instructions", "objective": "achievements"}
    ]
    seed = program["seed_candidate"]["instructions"]
    assert "- collect wood\n- explore" in seed
    assert client.get("/dataset").json() == {
        "splits": {"train": {"size": 24}, "val": {"size": 8}, "heldout": {"size": 12}}
    }
    rows = client.post("/dataset/rows", json={"split": "heldout", "seeds": [3, 0, 3]}).json()
    assert [r["example_id"] for r in rows["rows"]] == ["heldout:3", "heldout:0", "heldout:3"]
    assert rows["rows"][0] == {
        "example_id": "heldout:3",
        "split": "heldout",
        "seed": 3,
        "world_seed": 30_003,
        "max_steps": 150,
    }
    bad = client.post("/dataset/rows", json={"split": "val", "seeds": [8]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "seed_out_of_range"


def test_rollout_scores_an_episode(client: TestClient) -> None:
    got = client.post("/rollout", json=rollout_body(client)).json()
    assert got["status"] == "completed"
    info = got["reward_info"]
    assert 0 < info["outcome_reward"] <= 1
    assert set(info["objectives"]) == {"collect", "place", "make", "survive"}
    assert info["feedback"].startswith("Score ")
    trace = got["trace"]
    assert len(trace) == got["output"]["steps"] == 40
    assert set(trace[0]) == {"observation", "action", "reward", "messages", "info"}
    assert trace[0]["observation"].startswith("Step 0/40, day.")
    assert got["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    assert got["output"]["achievements"]["collect_wood"] > 0
    again = client.post("/rollout", json=rollout_body(client)).json()
    assert again["trace"] == trace and again["reward_info"] == info


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"policy": {"backend": "magic"}}, "unknown_backend"),
        ({"policy": {"backend": "openai_chat"}}, "invalid_policy"),
        ({"policy": {"backend": "offline", "params": {"max_steps": 0}}}, "invalid_policy"),
        ({"dataset_row": {"example_id": "x"}}, "invalid_row"),
        ({"dataset_row": {"world_seed": "7"}}, "invalid_row"),
        ({"candidate": {"prompt": "x"}}, "unknown_candidate_field"),
        ({"task_id": "banking77"}, "unknown_task"),
    ],
)
def test_requests_that_cannot_be_played_are_400(
    client: TestClient, change: dict[str, Any], code: str
) -> None:
    resp = client.post("/rollout", json={**rollout_body(client), **change})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]


def test_step_limit_overrun_is_a_failed_rollout_with_its_reason() -> None:
    with TestClient(create_app(max_steps=25)) as c:
        got = c.post("/rollout", json=rollout_body(c)).json()
    assert got["status"] == "failed"
    assert got["error"] == "step limit: the rollout took more than max_steps=25 steps"
    assert len(got["trace"]) == 25  # what happened before it failed


def test_an_exception_in_the_episode_is_a_failed_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    from crafter_task.agent import Agent

    real = Agent.decide

    def flaky(self: Agent, state: Any) -> Any:
        if state.step == 7:
            raise RuntimeError("the agent tripped over a tree")
        return real(self, state)

    monkeypatch.setattr(Agent, "decide", flaky)
    with TestClient(create_app()) as c:
        got = c.post("/rollout", json=rollout_body(c)).json()
        assert c.get("/health").status_code == 200  # still serving
    assert got["status"] == "failed"
    assert got["error"] == "RuntimeError: the agent tripped over a tree"
    assert len(got["trace"]) == 7


def test_wall_time_overrun_is_a_failed_rollout() -> None:
    with TestClient(create_app(max_rollout_seconds=0.001)) as c:
        got = c.post("/rollout", json=rollout_body(c)).json()
    assert got["status"] == "failed" and got["error"].startswith("wall time")


def test_a_model_endpoint_that_fails_for_good_is_a_failed_rollout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"message": "no access"}})

    real_client = httpx.AsyncClient

    def mocked(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        return real_client(transport=httpx.MockTransport(refuse))

    monkeypatch.setattr("crafter_task.rollout.httpx.AsyncClient", mocked)
    with TestClient(create_app()) as c:
        body = rollout_body(
            c,
            policy={"backend": "openai_chat", "model": "m", "base_url": "http://model.test/v1"},
        )
        got = c.post("/rollout", json=body).json()
    assert got["status"] == "failed"
    assert got["error"].startswith("openai_chat at step 0: HTTP 403")


def test_async_submission(client: TestClient) -> None:
    resp = client.post("/rollout", json=rollout_body(client, submission_mode="async"))
    assert resp.status_code == 202
    rid = resp.json()["rollout_id"]
    for _ in range(1000):
        state = client.get(f"/rollouts/{rid}").json()
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.01)
    assert state["status"] == "completed" and len(state["trace"]) == 40


def test_module_app_is_the_default_app() -> None:
    assert container.app.name == "crafter" and container.app.max_steps == 1000


def test_container_check_passes_on_the_shipped_config(cookbook_dir: Path) -> None:
    """`gepa-cli container check`: the handshake and one sample rollout per split."""
    result = CliRunner().invoke(
        cli, ["container", "check", "--config", str(cookbook_dir / "gepa.toml"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["violations"] == []
    assert report["contract"] == "gepa_cli.container.v1"
    routes = [step["route"] for step in report["steps"]]
    for split in ("train", "val", "heldout"):
        assert f"POST /rollout [{split}]" in routes
