from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from banking77_task.container import create_app
from banking77_task.data import load_sample
from banking77_task.policy import normalize_answer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

LABELS = load_sample().labels
SEEN: list[dict[str, Any]] = []


def fake_openai() -> FastAPI:
    """An OpenAI-compatible endpoint whose answer depends on the model name."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        SEEN.append({"body": body, "auth": request.headers.get("authorization")})
        model = body["model"]
        if model == "broken":
            return JSONResponse({"error": "overloaded"}, status_code=503)
        if model == "denied":
            return JSONResponse({"error": "bad key"}, status_code=401)
        if model == "slow":
            await asyncio.sleep(2)
        answers = {"echo-right": "  Card_Arrival\n", "closeish": "card arival", "chatty": "x"}
        answer = answers.get(model, "I think: card_linking.")
        return {
            "choices": [{"message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 3},
        }

    return app


@pytest.fixture(scope="module")
def base_url(serve_app: Callable[[FastAPI], Iterator[str]]) -> Iterator[str]:
    yield from serve_app(fake_openai())


def body(base_url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "candidate": {"system_prompt": "Classify banking queries."},
        "policy": {
            "backend": "openai_chat",
            "model": model,
            "base_url": base_url + "/v1",
            "api_key_env": "FAKE_LLM_KEY",
            "temperature": 0.0,
        },
        "dataset_row": {"example_id": "x:0", "query": "Where is my card?", "label": "card_arrival"},
        **extra,
    }


def test_normalize_answer() -> None:
    assert normalize_answer(" Refund_not_showing_up ", LABELS) == "Refund_not_showing_up"
    assert normalize_answer("reverted_card_payment", LABELS) == "reverted_card_payment?"
    assert normalize_answer("Label: card_payment_fee_charged.", LABELS) == (
        "card_payment_fee_charged"
    )
    assert normalize_answer("no idea", LABELS) == "unknown"


def test_openai_chat_rollouts(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", "k-123")
    with TestClient(create_app(load_sample(), api_key="")) as c:
        SEEN.clear()
        ok = c.post("/rollout", json=body(base_url, "echo-right")).json()
        assert ok["status"] == "completed" and ok["output"] == "card_arrival"
        assert ok["reward_info"]["outcome_reward"] == 1.0
        assert ok["usage"] == {"prompt_tokens": 50, "completion_tokens": 3}
        sent = SEEN[-1]
        assert sent["auth"] == "Bearer k-123" and sent["body"]["temperature"] == 0.0
        msgs = sent["body"]["messages"]
        assert msgs[0] == {"role": "system", "content": "Classify banking queries."}
        assert "Where is my card?" in msgs[1]["content"] and "card_linking" in msgs[1]["content"]

        assert c.post("/rollout", json=body(base_url, "closeish")).json()["output"] == (
            "card_arrival"
        )
        wrong = c.post("/rollout", json=body(base_url, "other")).json()
        assert wrong["output"] == "card_linking"
        assert wrong["reward_info"]["feedback"].startswith(
            "Wrong: predicted card_linking, expected card_arrival."
        )

        transient = c.post("/rollout", json=body(base_url, "broken"))
        assert transient.status_code == 502
        assert transient.json()["error"]["code"] == "upstream_unavailable"
        denied = c.post("/rollout", json=body(base_url, "denied")).json()
        assert denied["status"] == "failed" and "401" in denied["error"]

        monkeypatch.delenv("FAKE_LLM_KEY")
        missing = c.post("/rollout", json=body(base_url, "echo-right"))
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_api_key"


def test_async_rollout_can_be_terminated(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", "k")
    with TestClient(create_app(load_sample(), api_key="")) as c:
        resp = c.post("/rollout", json=body(base_url, "slow", submission_mode="async"))
        assert resp.status_code == 202
        rid = resp.json()["rollout_id"]
        assert c.get(f"/rollouts/{rid}").json()["status"] in ("queued", "running")
        done = c.post(f"/rollouts/{rid}/terminate", json={"reason": "timeout"}).json()
        assert done == {"rollout_id": rid, "status": "cancelled", "reason": "timeout"}
        assert c.get(f"/rollouts/{rid}").json()["status"] == "cancelled"
