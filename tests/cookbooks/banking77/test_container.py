from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from banking77_task.container import API_KEY_ENV, create_app
from banking77_task.data import load_sample
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(load_sample(), api_key=""))


def rollout_body(row: dict[str, Any], prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": "banking77",
        "candidate": {"system_prompt": prompt},
        "policy": {"backend": "offline", "temperature": 0.0},
        "dataset_row": row,
        "metadata": {"candidate_id": "c0000", "split": "train", "seed": row["seed"]},
        **extra,
    }


def test_health_metadata_program_dataset(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "contract_version": "gepa_cli.container.v1",
    }
    gepa = client.get("/metadata").json()["metadata"]["optimizer_contracts"]["gepa"]
    assert gepa["version"] == "gepa_cli.container.v1"
    for key in ("program_route", "dataset_route", "dataset_rows_route", "rollout_route"):
        assert gepa[key].startswith("/")
    program = client.get("/program").json()
    assert program["program_id"] == "banking77"
    assert program["modules"][0]["candidate_field"] == "system_prompt"
    assert program["target_modules"] == [
        {"module_id": "classifier", "candidate_field": "system_prompt", "objective": "accuracy"}
    ]
    seed = program["seed_candidate"]["system_prompt"]
    assert "- card_arrival: card arrival" in seed and seed.count("\n- ") == 77
    sizes = client.get("/dataset").json()["splits"]
    assert sizes == {"train": {"size": 231}, "val": {"size": 77}, "heldout": {"size": 154}}


def test_rows_in_requested_order(client: TestClient) -> None:
    rows = client.post("/dataset/rows", json={"split": "val", "seeds": [5, 0, 76, 5]}).json()
    assert [r["example_id"] for r in rows["rows"]] == ["val:5", "val:0", "val:76", "val:5"]
    assert rows["rows"][0] == rows["rows"][3]
    assert {"query", "label", "split", "seed"} <= set(rows["rows"][1])
    # a split is shuffled once with a fixed seed: early seeds span many labels
    first = client.post("/dataset/rows", json={"split": "train", "seeds": list(range(20))}).json()
    assert len({r["label"] for r in first["rows"]}) >= 12


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"split": "nope", "seeds": [0]}, "unknown_split"),
        ({"split": "train", "seeds": [231]}, "seed_out_of_range"),
        ({"split": "train", "seeds": [-1]}, "seed_out_of_range"),
        ({"split": "train", "seeds": ["0"]}, "invalid_request"),
        ({"seeds": [0]}, "invalid_request"),
    ],
)
def test_rows_bad_requests(client: TestClient, body: dict[str, Any], code: str) -> None:
    resp = client.post("/dataset/rows", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]


def test_sync_rollout_scores_and_gives_feedback(client: TestClient) -> None:
    row = client.post("/dataset/rows", json={"split": "train", "seeds": [0]}).json()["rows"][0]
    label = row["label"]
    right = f"- {label}: {row['query']}"  # the whole query as one phrase cue: must match
    got = client.post("/rollout", json=rollout_body(row, right)).json()
    assert got["status"] == "completed" and got["output"] == label
    assert got["reward_info"] == {
        "outcome_reward": 1.0,
        "objectives": {"accuracy": 1.0},
        "feedback": f"Correct: {label}.",
    }
    (step,) = got["trace"]  # one step: the query, the answer, the chat messages
    assert (step["observation"], step["action"]) == (row["query"], label)
    assert step["messages"][0] == {"role": "system", "content": right}
    other = "card_arrival" if label != "card_arrival" else "card_linking"
    wrong = client.post("/rollout", json=rollout_body(row, f"- {other}: {row['query']}")).json()
    assert wrong["output"] == other and wrong["reward_info"]["outcome_reward"] == 0.0
    assert wrong["reward_info"]["feedback"] == (
        f"Wrong: predicted {other}, expected {label}. Query: {row['query']}"
    )
    # a row with only its example_id is resolved from the dataset
    slim = client.post("/rollout", json=rollout_body({"example_id": "train:0", "seed": 0}, right))
    assert slim.json()["output"] == label


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"candidate": {"other": "x"}}, "unknown_candidate_field"),
        ({"policy": {"backend": "magic"}}, "unknown_backend"),
        ({"task_id": "other"}, "unknown_task"),
        ({"dataset_row": {"query": "hi", "label": "not_a_label", "seed": 0}}, "invalid_row"),
        ({"dataset_row": {"label": "card_arrival", "seed": 0}}, "invalid_row"),
        ({"submission_mode": "later"}, "invalid_request"),
        ({"candidate": "text"}, "invalid_request"),
        ({"policy": {"backend": "openai_chat"}}, "invalid_policy"),
    ],
)
def test_rollout_bad_requests(client: TestClient, change: dict[str, Any], code: str) -> None:
    body = rollout_body({"query": "my card?", "label": "card_arrival", "seed": 0}, "- a: b")
    resp = client.post("/rollout", json={**body, **change})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == code


def test_unknown_route_and_rollout_use_error_shape(client: TestClient) -> None:
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    resp = client.get("/rollouts/r-missing")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_rollout"
    assert client.post("/rollouts/r-missing/terminate", json={}).status_code == 404


async def test_async_submission_and_polling() -> None:
    app = create_app(load_sample(), api_key="")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
        row = (await c.post("/dataset/rows", json={"split": "heldout", "seeds": [3]})).json()
        row = row["rows"][0]
        body = rollout_body(row, f"- {row['label']}: {row['query']}", submission_mode="async")
        resp = await c.post("/rollout", json=body)
        assert resp.status_code == 202 and resp.json()["status"] == "queued"
        rid = resp.json()["rollout_id"]
        for _ in range(100):
            state = (await c.get(f"/rollouts/{rid}")).json()
            if state["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.01)
        assert state["status"] == "completed" and state["output"] == row["label"]
        assert state["rollout_id"] == rid
        # terminating a finished rollout changes nothing
        done = (await c.post(f"/rollouts/{rid}/terminate", json={"reason": "late"})).json()
        assert done["status"] == "completed"


def test_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "s3cret")
    c = TestClient(create_app(load_sample()))
    assert c.get("/health").status_code == 200
    resp = c.get("/program")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
    assert c.get("/program", headers={"X-API-Key": "wrong"}).status_code == 401
    assert c.get("/program", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.get("/dataset", headers={"Authorization": "Bearer s3cret"}).status_code == 200
