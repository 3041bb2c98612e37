"""The container, served by the task-app kit: routes, rows, rollouts, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from code_review_task.container import create_app
from code_review_task.data import load
from code_review_task.prompt import SEED_CHECKLIST
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def body(row: dict[str, Any], checklist: str, **policy: Any) -> dict[str, Any]:
    return {
        "task_id": "code_review",
        "candidate": {"checklist": checklist},
        "policy": {"backend": "offline", **policy},
        "dataset_row": row,
        "metadata": {"candidate_id": "c0001", "split": row.get("split"), "seed": row.get("seed")},
    }


def test_program_and_dataset(client: TestClient) -> None:
    program = client.get("/program").json()
    assert program["program_id"] == "code_review"
    (target,) = program["target_modules"]
    assert target["module_id"] == "reviewer" and target["candidate_field"] == "checklist"
    assert target["objective"] == "0.4 precision + 0.4 recall + 0.2 quiet"
    assert program["seed_candidate"] == {"checklist": SEED_CHECKLIST}
    sizes = client.get("/dataset").json()["splits"]
    assert {k: v["size"] for k, v in sizes.items()} == {
        s: len(load().split(s)) for s in ("train", "val", "heldout")
    }


def test_rows_carry_the_diff_and_never_the_labels(client: TestClient) -> None:
    rows = client.post("/dataset/rows", json={"split": "val", "seeds": [3, 0, 3]}).json()["rows"]
    val = load().split("val")
    assert [r["example_id"] for r in rows] == [val[3].id, val[0].id, val[3].id]
    assert rows[1]["diff"] == val[0].diff_text and rows[1]["language"] in ("python", "go")
    assert all("defects" not in r for r in rows)


def test_offline_rollout_scores_with_objectives_and_feedback(client: TestClient) -> None:
    ex = load().by_id("py-users-find-by-email")
    assert ex is not None
    row = {**ex.row(), "split": ex.split, "seed": 0}
    precise = client.post("/rollout", json=body(row, "- sql-injection: SQL built by % formatting"))
    good = precise.json()
    assert good["status"] == "completed" and good["reward_info"]["outcome_reward"] == 1.0
    assert good["reward_info"]["objectives"] == {"precision": 1.0, "recall": 1.0, "quiet": 1.0}
    assert good["reward_info"]["feedback"].splitlines()[1].startswith("Found: sql-injection")
    assert good["output"]["findings"][0]["line"] == ex.defects[0].line
    assert good["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    assert good["metadata"]["example_id"] == ex.id
    # on a clean diff with a parameterized INSERT, a vague item raises a false alarm
    clean = {"example_id": "py-audit-log-insert"}
    bad = client.post("/rollout", json=body(clean, "- Check database queries.")).json()
    assert bad["reward_info"]["objectives"]["precision"] == 0.0
    assert "False alarm: sql-injection at admin/audit.py:" in bad["reward_info"]["feedback"]


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        (body({"example_id": "no-such-diff"}, "- x"), "invalid_row"),
        (body({"example_id": "go-healthz"}, "- x", backend="magic"), "invalid_policy"),
        (body({"example_id": "go-healthz"}, "- x", backend="openai_chat"), "invalid_policy"),
        ({**body({"example_id": "go-healthz"}, "- x"), "candidate": {"other": "x"}}, None),
    ],
)
def test_bad_rollout_requests_are_400(
    client: TestClient, request_body: dict[str, Any], code: str | None
) -> None:
    resp = client.post("/rollout", json=request_body)
    assert resp.status_code == 400, resp.text
    if code:
        assert resp.json()["error"]["code"] == code


def _fake_model(answer: Callable[[dict[str, Any]], httpx.Response]) -> TestClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer(json.loads(request.content))

    return TestClient(create_app(transport=httpx.MockTransport(handler)))


CHAT = {"backend": "openai_chat", "model": "m", "base_url": "http://model.test/v1"}


def test_malformed_model_output_is_a_scored_failure_with_feedback() -> None:
    reply = {"choices": [{"message": {"content": "LGTM, ship it!"}}], "usage": {"prompt_tokens": 7}}
    with _fake_model(lambda _b: httpx.Response(200, json=reply)) as client:
        got = client.post("/rollout", json=body({"example_id": "py-ping-host-tool"}, "- x", **CHAT))
    assert got.status_code == 200
    out = got.json()
    assert out["status"] == "completed"
    assert out["reward_info"]["outcome_reward"] == 0.0
    assert out["reward_info"]["objectives"] == {"precision": 0.0, "recall": 0.0, "quiet": 0.0}
    feedback = out["reward_info"]["feedback"]
    assert "could not be scored: the answer is not JSON" in feedback
    assert "Missed: command-injection at support/netcheck.py:" in feedback
    assert out["usage"]["prompt_tokens"] == 7 and "cost_usd" not in out["usage"]


@pytest.mark.parametrize(("status", "expected"), [(503, 502), (429, 429)])
def test_an_overloaded_model_is_a_retryable_answer(status: int, expected: int) -> None:
    with _fake_model(lambda _b: httpx.Response(status, text="busy")) as client:
        got = client.post("/rollout", json=body({"example_id": "go-healthz"}, "- x", **CHAT))
    assert got.status_code == expected
    assert got.json()["error"]["code"] == "upstream_unavailable"


def test_a_refusing_model_is_a_failed_rollout() -> None:
    with _fake_model(lambda _b: httpx.Response(400, text="unknown model")) as client:
        got = client.post("/rollout", json=body({"example_id": "go-healthz"}, "- x", **CHAT))
    assert got.status_code == 200
    assert got.json()["status"] == "failed" and "HTTP 400" in got.json()["error"]
