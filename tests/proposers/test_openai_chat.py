"""The openai_chat backend against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest

from gepa_cli.config.models import Prices, ProposerConfig
from gepa_cli.errors import ConfigError, ProposerError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.proposers import DEFAULT_TEMPLATE, OpenAIChatProposer, build_proposer
from support.memory_cache import MemoryCache

from .support import CURRENT, ChatServer, Reply, completion, make_request

NEW_TEXT = "Classify the message into one banking intent; top-ups by transfer are transfers."
ANSWER = f"I tightened the rules.\n\n```text\n{NEW_TEXT}\n```\n"
KEY = "sk-test-0123456789"


def config(server: ChatServer, **overrides: Any) -> ProposerConfig:
    fields: dict[str, Any] = {
        "backend": "openai_chat",
        "model": "gpt-4o-mini",
        "base_url": server.url,
        "api_key_env": "PROPOSER_TEST_KEY",
        "temperature": 0.3,
        "max_tokens": 700,
        "timeout_seconds": 5,
        "retries": 2,
    }
    fields.update(overrides)
    return ProposerConfig(**fields)


def fast(server: ChatServer, **overrides: Any) -> OpenAIChatProposer:
    """A proposer whose backoff is short enough for tests."""
    settings: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "cache": NoCache(),
        "template": DEFAULT_TEMPLATE,
        "base_url": server.url,
        "timeout_seconds": 5.0,
        "retries": 2,
        "backoff_seconds": 0.01,
    }
    settings.update(overrides)
    return OpenAIChatProposer(**settings)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPOSER_TEST_KEY", KEY)


async def test_request_shape_and_adopted_text(chat_server: ChatServer, tmp_path: Any) -> None:
    chat_server.script(Reply(body=completion(ANSWER)))
    proposer = build_proposer(config(chat_server), NoCache(), tmp_path)
    result = await proposer.propose(make_request())

    assert (result.new_text, result.rejection) == (NEW_TEXT, None)
    assert result.raw_output == ANSWER
    [sent] = chat_server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["temperature"] == 0.3
    assert sent.json["max_tokens"] == 700
    assert sent.json["messages"] == [{"role": "user", "content": result.prompt}]
    assert CURRENT in result.prompt and "expected transfer_into_account" in result.prompt


async def test_no_key_variable_sends_no_authorization(chat_server: ChatServer) -> None:
    chat_server.script(Reply(body=completion(ANSWER)))
    result = await fast(chat_server, max_tokens=None).propose(make_request())
    assert result.new_text == NEW_TEXT
    [sent] = chat_server.requests
    assert "authorization" not in sent.headers
    assert "max_tokens" not in sent.json


async def test_usage_and_cost_of_a_known_model(chat_server: ChatServer, tmp_path: Any) -> None:
    chat_server.script(Reply(body=completion(ANSWER, 1000, 2000)))
    result = await build_proposer(config(chat_server), NoCache(), tmp_path).propose(make_request())
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1000, 2000)
    assert result.usage.cost_known
    assert result.usage.cost_usd == pytest.approx((1000 * 0.15 + 2000 * 0.60) / 1e6)


async def test_price_override_wins(chat_server: ChatServer, tmp_path: Any) -> None:
    chat_server.script(Reply(body=completion(ANSWER, 2_000_000, 1_000_000)))
    prices = Prices(input_per_million_usd=1.0, output_per_million_usd=3.0)
    proposer = build_proposer(config(chat_server, prices=prices), NoCache(), tmp_path)
    result = await proposer.propose(make_request())
    assert result.usage.cost_known
    assert result.usage.cost_usd == pytest.approx(5.0)


async def test_unknown_model_has_unknown_cost(chat_server: ChatServer, tmp_path: Any) -> None:
    chat_server.script(Reply(body=completion(ANSWER, 300, 40)))
    proposer = build_proposer(config(chat_server, model="qwen2.5:7b"), NoCache(), tmp_path)
    result = await proposer.propose(make_request())
    assert result.usage.total_tokens == 340
    assert not result.usage.cost_known
    assert result.usage.cost_usd == 0.0


async def test_missing_usage_means_unknown_cost(chat_server: ChatServer) -> None:
    chat_server.script(Reply(body=completion(ANSWER, None, None)))
    result = await fast(chat_server).propose(make_request())
    assert result.new_text == NEW_TEXT
    assert not result.usage.cost_known


async def test_429_is_retried_after_retry_after(chat_server: ChatServer, tmp_path: Any) -> None:
    chat_server.script(
        Reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"}),
        Reply(body=completion(ANSWER)),
    )
    # config backoff is the production default; Retry-After: 0 is what keeps this fast
    result = await build_proposer(config(chat_server), NoCache(), tmp_path).propose(make_request())
    assert result.new_text == NEW_TEXT
    assert len(chat_server.requests) == 2
    assert chat_server.requests[0].json == chat_server.requests[1].json


async def test_5xx_is_retried_with_backoff(chat_server: ChatServer) -> None:
    chat_server.script(Reply(503, "upstream overloaded"), Reply(body=completion(ANSWER)))
    result = await fast(chat_server).propose(make_request())
    assert result.new_text == NEW_TEXT
    assert len(chat_server.requests) == 2


async def test_5xx_after_all_retries_is_a_proposer_error(chat_server: ChatServer) -> None:
    chat_server.script(*[Reply(500, {"error": {"message": "boom"}}) for _ in range(3)])
    with pytest.raises(ProposerError) as caught:
        await fast(chat_server, retries=2).propose(make_request())
    message = str(caught.value)
    assert "HTTP 500: boom" in message and "after 3 attempts" in message
    assert f"127.0.0.1:{chat_server.port}" in message
    assert len(chat_server.requests) == 3


async def test_timeout_after_retries_is_a_proposer_error(chat_server: ChatServer) -> None:
    chat_server.script(*[Reply(body=completion(ANSWER), delay=1.0) for _ in range(2)])
    with pytest.raises(ProposerError, match=r"timed out after 0\.2 s .*after 2 attempts"):
        await fast(chat_server, timeout_seconds=0.2, retries=1).propose(make_request())
    assert len(chat_server.requests) == 2


async def test_400_is_not_retried(chat_server: ChatServer, tmp_path: Any) -> None:
    chat_server.script(
        Reply(400, {"error": {"message": "max_tokens is too large: 700000", "type": "x"}}),
        Reply(body=completion(ANSWER)),
    )
    with pytest.raises(ProposerError) as caught:
        await build_proposer(config(chat_server), NoCache(), tmp_path).propose(make_request())
    message = str(caught.value)
    assert "HTTP 400: max_tokens is too large: 700000" in message
    assert f"127.0.0.1:{chat_server.port}" in message
    assert "\n" not in message
    assert len(chat_server.requests) == 1


async def test_key_echoed_by_the_server_is_not_in_the_error(chat_server: ChatServer) -> None:
    chat_server.script(Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    with pytest.raises(ProposerError) as caught:
        await fast(chat_server, api_key_env="PROPOSER_TEST_KEY").propose(make_request())
    assert KEY not in str(caught.value)
    assert "HTTP 401" in str(caught.value) and "api_key_env" in str(caught.value)


async def test_missing_key_variable_is_a_config_error(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("PROPOSER_TEST_KEY")
    proposer = build_proposer(config(chat_server), NoCache(), tmp_path)
    with pytest.raises(ConfigError, match="PROPOSER_TEST_KEY is not set"):
        await proposer.propose(make_request())
    assert chat_server.requests == []


async def test_unreachable_server_is_a_proposer_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proposer = OpenAIChatProposer(
        model="m",
        cache=NoCache(),
        template=DEFAULT_TEMPLATE,
        base_url=f"http://127.0.0.1:{port}/v1",
        retries=1,
        backoff_seconds=0.01,
    )
    with pytest.raises(ProposerError, match=r"cannot connect .*after 2 attempts"):
        await proposer.propose(make_request())


async def test_malformed_completion_is_a_proposer_error(chat_server: ChatServer) -> None:
    chat_server.script(Reply(body={"object": "list", "data": []}))
    cache = MemoryCache()
    with pytest.raises(ProposerError, match="malformed chat completion"):
        await fast(chat_server, cache=cache).propose(make_request())
    assert cache.entries == {}


@pytest.mark.parametrize(
    ("content", "finish_reason", "reason"),
    [
        ("```\nA much better instruction that was cut", "length", "truncated"),
        # cut at max_tokens before any fence: truncated, not "no fence"
        ("Looking at the low-scoring examples, the text needs", "length", "truncated"),
        # a short answer that stopped on its own inside a block it never closed
        ("```\nA much better instruction", "stop", "unclosed_fence"),
        (f"```\n{CURRENT}\n```", "stop", "unchanged"),
        ("", "stop", "empty"),
        (None, "stop", "empty"),
        ("Just use a better prompt.", "stop", "no_fence"),
    ],
)
async def test_bad_answers_are_rejected(
    chat_server: ChatServer, content: str | None, finish_reason: str, reason: str
) -> None:
    body = completion(content, 50, 10)
    body["choices"][0]["finish_reason"] = finish_reason
    chat_server.script(Reply(body=body))
    result = await fast(chat_server).propose(make_request())
    assert result.new_text is None
    assert result.rejection == reason
    assert result.meta["finish_reason"] == finish_reason
    assert result.raw_output == (content or "")
    assert result.prompt  # kept for the proposals ledger
    assert result.usage.total_tokens == 60  # a rejected answer still cost tokens


async def test_cached_call_replays_usage_without_the_server(chat_server: ChatServer) -> None:
    cache = MemoryCache()
    chat_server.script(Reply(body=completion(ANSWER, 1000, 2000)))
    first = await fast(chat_server, cache=cache, api_key_env="PROPOSER_TEST_KEY").propose(
        make_request()
    )
    second = await fast(chat_server, cache=cache, api_key_env="PROPOSER_TEST_KEY").propose(
        make_request()
    )
    assert len(chat_server.requests) == 1
    assert replace(second, meta={}) == replace(first, meta={})
    assert (first.meta["cache_action"], second.meta["cache_action"]) == ("write", "hit")
    # why generation ended is read from the cached completion too
    assert first.meta["finish_reason"] == second.meta["finish_reason"] == "stop"
    [(boundary, logical), _] = cache.calls
    assert boundary == "proposer.openai_chat"
    assert set(logical) == {"model", "temperature", "max_tokens", "messages"}
    assert KEY not in repr(cache.entries) and KEY not in repr(logical)
    assert chat_server.url not in repr(logical)
