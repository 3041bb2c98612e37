"""The openai_chat agent loop against a fake OpenAI-compatible endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from crafter_support import Trace
from crafter_task import llm
from crafter_task.llm import PolicyError, UpstreamError, parse_action
from crafter_task.rollout import RolloutError, run_rollout


class Policy:
    def __init__(self, **fields: Any) -> None:
        self.backend = "openai_chat"
        self.model = "fake-model"
        self.base_url = "http://model.test/v1"
        self.api_key_env = None
        self.temperature = 0.0
        self.max_tokens = 8
        self.timeout_seconds = 5.0
        self.params: dict[str, Any] = {"max_steps": 6}
        self.__dict__.update(fields)


ROW = {"example_id": "train:0", "world_seed": 10_000, "max_steps": 150}


def endpoint(answers: list[Any]) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """Answers in turn: a str is a completion, an int an HTTP status with an error body."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, int):
            return httpx.Response(answer, json={"error": {"message": "nope"}})
        body = {
            "choices": [{"message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 2},
        }
        return httpx.Response(200, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


def rollout(policy: Policy, client: httpx.AsyncClient, trace: Trace) -> Any:
    return asyncio.run(
        run_rollout({"instructions": "Chop trees first."}, ROW, policy, trace, client=client)
    )


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "BACKOFF_SECONDS", (0.0,))


@pytest.mark.parametrize(
    ("answer", "action"),
    [
        ("move_left", "move_left"),
        ("I will Move Left now.", "move_left"),
        ("Action: do", "do"),
        ("`make_wood_pickaxe`", "make_wood_pickaxe"),
        ("place stone, then noop", "place_stone"),
        ("sleep", "sleep"),
        ("undo", None),
        ("nothing useful", None),
    ],
)
def test_parse_action(answer: str, action: str | None) -> None:
    assert parse_action(answer) == action


def test_chat_rollout_plays_the_models_actions_and_counts_tokens(trace: Trace) -> None:
    client, seen = endpoint(["move_right", "do", "I think: move up", "???"])
    out = rollout(Policy(), client, trace)
    assert [s["action"] for s in trace.steps] == [
        "move_right",
        "do",
        "move_up",
        "noop",
        "noop",
        "noop",
    ]
    assert out.prompt_tokens == 600 and out.completion_tokens == 12
    assert out.metadata == {"backend": "openai_chat", "model": "fake-model", "calls": 6}
    assert "no action in the answer '???'" in str(trace.steps[3]["info"]["note"])  # type: ignore[index]
    body = json.loads(seen[0].content)
    assert body["model"] == "fake-model" and body["max_tokens"] == 8
    assert body["messages"][0] == {"role": "system", "content": "Chop trees first."}
    user = body["messages"][1]["content"]
    assert "Step 0/6, day." in user and "Actions: noop, move_left" in user
    assert "Answer with exactly one action name." in user
    assert "move_right" in json.loads(seen[1].content)["messages"][1]["content"]
    assert seen[0].url == "http://model.test/v1/chat/completions"
    assert "authorization" not in seen[0].headers
    # the trace keeps each step's exchange (the system prompt is the candidate)
    assert trace.steps[0]["messages"][1] == {"role": "assistant", "content": "move_right"}  # type: ignore[index]
    assert 0.0 <= out.reward <= 1.0 and set(out.objectives) == {
        "collect",
        "place",
        "make",
        "survive",
    }


def test_transient_errors_are_retried(trace: Trace) -> None:
    client, seen = endpoint([503, 429, "noop"])
    out = rollout(Policy(params={"max_steps": 2}), client, trace)
    assert len(seen) == 4 and out.episode.steps == 2


def test_persistent_failure_stops_the_episode(trace: Trace) -> None:
    client, seen = endpoint([503])
    with pytest.raises(UpstreamError, match="at step 0: HTTP 503 after 3 attempts"):
        rollout(Policy(), client, trace)
    assert len(seen) == 3 and trace.steps == []


def test_refusal_is_not_retried(trace: Trace) -> None:
    client, seen = endpoint(["noop", 401])
    with pytest.raises(UpstreamError, match="at step 1: HTTP 401"):
        rollout(Policy(), client, trace)
    assert len(seen) == 2 and len(trace.steps) == 1


def test_settings_errors(trace: Trace, monkeypatch: pytest.MonkeyPatch) -> None:
    client, seen = endpoint(["noop"])
    with pytest.raises(PolicyError, match=r"policy\.model"):
        rollout(Policy(model=None), client, trace)
    with pytest.raises(PolicyError, match=r"policy\.base_url"):
        rollout(Policy(base_url=""), client, trace)
    monkeypatch.delenv("CRAFTER_TEST_KEY", raising=False)
    with pytest.raises(PolicyError, match="CRAFTER_TEST_KEY"):
        rollout(Policy(api_key_env="CRAFTER_TEST_KEY"), client, trace)
    monkeypatch.setenv("CRAFTER_TEST_KEY", "k-1")
    rollout(Policy(api_key_env="CRAFTER_TEST_KEY", params={"max_steps": 1}), client, trace)
    assert seen[-1].headers["authorization"] == "Bearer k-1"
    with pytest.raises(RolloutError, match="backend 'magic'"):
        rollout(Policy(backend="magic"), client, trace)
