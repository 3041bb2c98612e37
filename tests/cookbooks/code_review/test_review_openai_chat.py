"""The openai_chat policy against a fake OpenAI-compatible endpoint (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from code_review_task.chat import PolicyError, PolicySettingsError, PolicyUnavailable
from code_review_task.data import load
from code_review_task.task import RowError, review

EXAMPLE = load().by_id("py-orders-search-status")
assert EXAMPLE is not None
ROW = EXAMPLE.row()
POLICY = {
    "backend": "openai_chat",
    "model": "gpt-test",
    "base_url": "http://model.test/v1",
    "temperature": 0.0,
    "max_tokens": 400,
    "params": {"response_format": {"type": "json_object"}},
}


def _client(
    answer: Callable[[dict[str, Any]], httpx.Response], seen: list[dict[str, Any]]
) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"url": str(request.url), "headers": dict(request.headers), "body": body})
        return answer(body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _chat(
    content: Any, usage: dict[str, int] | None = None
) -> Callable[[dict[str, Any]], httpx.Response]:
    return lambda _body: httpx.Response(
        200,
        json={
            "choices": [{"message": {"role": "assistant", "content": content}}],
            "usage": usage or {"prompt_tokens": 900, "completion_tokens": 40},
        },
    )


async def test_a_valid_answer_is_graded_and_the_request_is_complete() -> None:
    defect = EXAMPLE.defects[0]  # type: ignore[union-attr]
    finding = {
        "file": defect.file,
        "line": defect.line,
        "category": defect.category,
        "message": "f-string SQL",
        "item": 1,
    }
    seen: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    async with _client(_chat(json.dumps({"findings": [finding]})), seen) as client:
        out = await review(
            "- sql-injection: f-strings in SQL",
            ROW,
            POLICY,
            client=client,
            step=lambda **kw: steps.append(kw),
        )
    assert out.reward == 1.0 and out.objectives["recall"] == 1.0
    assert out.usage == {"prompt_tokens": 900, "completion_tokens": 40}
    (call,) = seen
    assert call["url"] == "http://model.test/v1/chat/completions"
    body = call["body"]
    assert body["model"] == "gpt-test" and body["max_tokens"] == 400
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert "- sql-injection: f-strings in SQL" in system["content"]
    # the diff goes with new-file line numbers in a gutter
    assert f"{defect.line:5} + " in user["content"]
    assert steps[0]["messages"][-1]["role"] == "assistant"


@pytest.mark.parametrize(
    "content",
    ["Sorry, I cannot review this.", '{"findings": [{"file": "x"}]}', None, "```json\n{\n```"],
)
async def test_a_malformed_answer_is_a_scored_failure_not_an_error(content: Any) -> None:
    async with _client(_chat(content), []) as client:
        out = await review("- anything", ROW, POLICY, client=client)
    assert out.reward == 0.0 and out.objectives == {"precision": 0.0, "recall": 0.0, "quiet": 0.0}
    assert "the answer could not be scored" in out.feedback
    assert "Missed: sql-injection at shop/orders/repository.py:" in out.feedback
    assert out.usage["prompt_tokens"] == 900  # a bad answer still cost tokens


@pytest.mark.parametrize(
    ("status", "answer_status"), [(500, 502), (503, 502), (429, 429), (408, 502)]
)
async def test_transient_failures_are_retryable(status: int, answer_status: int) -> None:
    async with _client(lambda _b: httpx.Response(status, text="overloaded"), []) as client:
        with pytest.raises(PolicyUnavailable, match=f"HTTP {status}: overloaded") as caught:
            await review("- x", ROW, POLICY, client=client)
    assert caught.value.status == answer_status


async def test_refusals_and_unusable_answers_are_policy_errors() -> None:
    async with _client(lambda _b: httpx.Response(400, text="bad model"), []) as client:
        with pytest.raises(PolicyError, match="HTTP 400: bad model") as caught:
            await review("- x", ROW, POLICY, client=client)
    assert not isinstance(caught.value, PolicyUnavailable)
    async with _client(lambda _b: httpx.Response(200, json={"nope": 1}), []) as client:
        with pytest.raises(PolicyError, match="no message content"):
            await review("- x", ROW, POLICY, client=client)


async def test_the_key_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = {**POLICY, "api_key_env": "CR_TEST_KEY"}
    monkeypatch.delenv("CR_TEST_KEY", raising=False)
    async with _client(_chat('{"findings": []}'), []) as client:
        with pytest.raises(PolicySettingsError, match="CR_TEST_KEY, which is not set"):
            await review("- x", ROW, policy, client=client)
    monkeypatch.setenv("CR_TEST_KEY", "k-123")
    seen: list[dict[str, Any]] = []
    async with _client(_chat('{"findings": []}'), seen) as client:
        await review("- x", ROW, policy, client=client)
    assert seen[0]["headers"]["authorization"] == "Bearer k-123"


async def test_bad_settings_and_rows_are_refused() -> None:
    with pytest.raises(PolicySettingsError, match=r"policy\.model is required"):
        async with httpx.AsyncClient() as client:
            await review("- x", ROW, {"backend": "openai_chat"}, client=client)
    with pytest.raises(PolicySettingsError, match="is not one of"):
        await review("- x", ROW, {"backend": "magic"})
    with pytest.raises(RowError, match="not a diff of this dataset"):
        await review("- x", {"example_id": "nope"}, {"backend": "offline"})
