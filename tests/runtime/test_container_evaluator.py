"""ContainerEvaluator: order, parsing, cache keys, failures, circuit breaker, replay."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from gepa_cli.config import GepaConfig
from gepa_cli.engine.types import EvaluationRequest
from gepa_cli.errors import CacheMissError, ContainerError
from gepa_cli.runtime.boundary import NoCache, ResponseCache
from gepa_cli.runtime.container import (
    ContainerClient,
    ContainerEvaluator,
    HandshakeResult,
    handshake,
)
from support.asgi import asgi_client
from support.memory_cache import MemoryCache
from support.reference_container import create_app, keywords_for
from support.task_dir import ConfigFactory

GOOD = "Mind accuracy, brevity, citations, clarity, examples and format."


async def setup(
    config: GepaConfig, cache: ResponseCache, app: Any, **client_kwargs: Any
) -> tuple[ContainerClient, HandshakeResult]:
    client = asgi_client(app, **client_kwargs)
    return client, await handshake(config, client, cache)


def expected(example_id: str, prompt: str) -> float:
    split, seed = example_id.split(":")
    words = keywords_for(split, int(seed))
    return sum(word in prompt.lower() for word in words) / len(words)


async def test_results_parse_the_contract_and_keep_request_order(
    config_factory: ConfigFactory,
) -> None:
    config = config_factory(policy={"model": "m1", "base_url": "http://llm.local/v1"})
    app = create_app()
    client, shake = await setup(config, NoCache(), app)
    ids = list(reversed(shake.example_ids("train"))) + shake.example_ids("heldout")
    evaluator = ContainerEvaluator(shake, NoCache(), client, policy=config.policy)
    async with client:
        results = await evaluator.evaluate(
            EvaluationRequest("c7", {"system_prompt": GOOD}, ids, "train")
        )
    assert [r.example_id for r in results] == ids
    first = results[0]
    assert first.status == "completed" and first.score == expected(first.example_id, GOOD)
    assert first.objectives == {"coverage": first.score}
    assert first.feedback.startswith(("All keywords", "Missing:"))
    assert set(first.inputs) == {"question", "keywords"}  # task fields only
    assert first.trace is None and first.usage.prompt_tokens == len(GOOD.split())
    assert first.meta["cache_action"] == "live" and first.meta["attempts"] == 1
    assert first.meta["rollout_id"].startswith("r-")
    sent = app.state.stats.rollout_bodies[0]
    assert sent["task_id"] == "keywords" and sent["submission_mode"] == "sync"
    assert sent["metadata"]["candidate_id"] == "c7"
    assert sent["policy"] == {
        "backend": "offline",
        "temperature": 0.0,
        "model": "m1",
        "base_url": "http://llm.local/v1",
    }


async def test_cache_key_is_content_only_so_sync_and_async_runs_share_it(
    config_factory: ConfigFactory,
) -> None:
    config = config_factory(policy={"base_url": "http://a:1/v1"})
    cache = MemoryCache("readwrite")
    ids = ["train:0", "train:1", "train:2"]
    first_app = create_app()
    client, shake = await setup(config, cache, first_app)
    async with client:
        sync = ContainerEvaluator(shake, cache, client, policy=config.policy)
        recorded = await sync.evaluate(
            EvaluationRequest("c1", {"system_prompt": GOOD}, ids, "train")
        )
    # another container instance, port, candidate id, policy endpoint and submission mode
    other = config_factory(policy={"base_url": "http://b:2/v1"})
    second_app = create_app()
    async with asgi_client(second_app, poll_interval_seconds=0.001) as client2:
        rerun = ContainerEvaluator(
            shake, cache, client2, policy=other.policy, submission_mode="async"
        )
        replayed = await rerun.evaluate(
            EvaluationRequest("c9", {"system_prompt": GOOD}, ids, "val")
        )
    assert second_app.state.stats.live("POST /rollout") == 0
    assert [r.meta["cache_action"] for r in replayed] == ["hit"] * 3
    strip = [{**r.__dict__, "meta": None} for r in recorded]
    assert strip == [{**r.__dict__, "meta": None} for r in replayed]
    for request in cache.requests.values():
        text = orjson.dumps(request).decode()
        assert "c1" not in text and "http://" not in text and "submission_mode" not in text


async def test_failures_are_results_never_cached(config_factory: ConfigFactory) -> None:
    config = config_factory()
    app = create_app()
    cache = MemoryCache("readwrite")
    client, shake = await setup(config, cache, app)

    class Broken(httpx.AsyncBaseTransport):
        """5xx for seed 1, a malformed answer for seed 2, the real container otherwise."""

        inner = httpx.ASGITransport(app=app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/rollout":
                seed = orjson.loads(request.content)["dataset_row"]["seed"]
                if seed == 1:
                    return httpx.Response(503, json={"error": {"code": "busy", "message": "x"}})
                if seed == 2:
                    return httpx.Response(200, content=b'{"reward_info": {"outcome_reward": NaN}}')
            return await self.inner.handle_async_request(request)

    broken = asgi_client(app, Broken(), retries=1)
    evaluator = ContainerEvaluator(shake, cache, broken, policy=config.policy)
    async with client, broken:
        results = await evaluator.evaluate(
            EvaluationRequest(
                "c1", {"system_prompt": GOOD}, ["train:0", "train:1", "train:2"], "train"
            )
        )
    ok, down, bad = results
    assert ok.status == "completed" and ok.meta["cache_action"] == "write"
    assert down.status == "failed" and down.score == 0.0 and down.meta["attempts"] == 2
    assert down.error is not None and down.error.startswith("ContainerError: ")
    assert "HTTP 503" in down.error
    assert bad.status == "failed" and bad.meta["error_class"] == "ContainerContractError"
    assert bad.error is not None and "reward_info.outcome_reward" in bad.error
    assert cache.actions[("container.rollout", "write")] == 1  # only the good one


async def test_breaker_stops_the_run_when_the_container_is_down(
    config_factory: ConfigFactory,
) -> None:
    config = config_factory()
    client, shake = await setup(config, NoCache(), create_app())
    dead = ContainerClient("http://127.0.0.1:9", retries=0, timeout_seconds=0.5)
    evaluator = ContainerEvaluator(shake, NoCache(), dead, max_consecutive_failures=3)
    ids = shake.example_ids("train")
    async with client, dead:
        with pytest.raises(ContainerError) as caught:
            await evaluator.evaluate(EvaluationRequest("c1", {"system_prompt": GOOD}, ids, "train"))
    message = str(caught.value)
    assert "http://127.0.0.1:9" in message and "ConnectError" in message
    assert "3 rollouts in a row failed" in message


async def test_breaker_trips_on_most_of_a_batch_failing(config_factory: ConfigFactory) -> None:
    config = config_factory()
    app = create_app()
    client, shake = await setup(config, NoCache(), app)

    class Flaky(httpx.AsyncBaseTransport):
        """Two of every three seeds fail, never three in a row: only the batch rule trips."""

        inner = httpx.ASGITransport(app=app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seed = orjson.loads(request.content)["dataset_row"]["seed"]
            if seed % 3 != 0:
                return httpx.Response(500, json={})
            return await self.inner.handle_async_request(request)

    flaky = asgi_client(app, Flaky(), retries=0, max_concurrency=1)
    evaluator = ContainerEvaluator(shake, NoCache(), flaky, max_consecutive_failures=3)
    async with client, flaky:
        with pytest.raises(ContainerError, match="4 of 6 rollouts in one batch failed"):
            await evaluator.evaluate(
                EvaluationRequest(
                    "c1", {"system_prompt": GOOD}, shake.example_ids("train"), "train"
                )
            )


async def test_readonly_replay_needs_no_container(config_factory: ConfigFactory) -> None:
    config = config_factory()
    cache = MemoryCache("readwrite")
    app = create_app()
    client, shake = await setup(config, cache, app)
    request = EvaluationRequest(
        "c1", {"system_prompt": GOOD}, shake.example_ids("val"), "val", True
    )
    async with client:
        recorded = await ContainerEvaluator(shake, cache, client).evaluate(request)
    cache.mode = "readonly"
    before = sum(app.state.stats.requests.values())
    replay_shake = await handshake(config, None, cache, live=False)
    assert replay_shake.metadata is None
    assert replay_shake.example_ids("heldout") == shake.example_ids("heldout")
    assert replay_shake.seed_texts == shake.seed_texts
    replayed = await ContainerEvaluator(replay_shake, cache, None).evaluate(request)
    assert sum(app.state.stats.requests.values()) == before  # 0 live requests
    assert [r.score for r in replayed] == [r.score for r in recorded]
    assert replayed[0].trace == recorded[0].trace is not None
    with pytest.raises(CacheMissError):
        await ContainerEvaluator(replay_shake, cache, None).evaluate(
            EvaluationRequest("c2", {"system_prompt": "new text"}, ["train:0"], "train")
        )
    other = config_factory(dataset={"train_seeds": [42]})
    with pytest.raises(CacheMissError):
        await handshake(other, None, cache, live=False)
