"""The HTTP client: retries, no retries, keys, async submission, bounded concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gepa_cli.config import ContainerConfig
from gepa_cli.errors import ConfigError, ContainerError
from gepa_cli.runtime.container import ContainerClient
from support.asgi import asgi_client
from support.reference_container import create_app, make_row


class Scripted(httpx.AsyncBaseTransport):
    """Answers from a script of (status or exception) per call, then 200s."""

    def __init__(self, script: list[int | Exception]) -> None:
        self.script = list(script)
        self.calls: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        body = {"ok": True} if step == 200 else {"error": {"code": "x", "message": f"s{step}"}}
        return httpx.Response(step, json=body)


def client_for(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> ContainerClient:
    return asgi_client(None, transport, **kwargs)


@pytest.mark.parametrize(
    "fault",
    [
        503,
        500,
        429,
        408,
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("connection reset by peer"),
    ],
)
async def test_transient_faults_are_retried(fault: int | Exception) -> None:
    transport = Scripted([fault, fault])
    async with client_for(transport, retries=2) as client:
        result = await client.call("GET", "/x")
    assert result.body == {"ok": True} and result.attempts == 3 and len(transport.calls) == 3


async def test_retries_are_bounded_and_the_error_names_url_and_fault() -> None:
    transport = Scripted([503] * 10)
    async with client_for(transport, retries=3) as client:
        with pytest.raises(ContainerError) as caught:
            await client.call("POST", "/rollout", {"a": 1})
    assert len(transport.calls) == 4
    assert "http://container.test" in str(caught.value) and "HTTP 503" in str(caught.value)
    assert caught.value.details["attempts"] == 4


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_4xx_are_not_retried(status: int) -> None:
    transport = Scripted([status])
    async with client_for(transport, retries=5) as client:
        with pytest.raises(ContainerError, match=f"HTTP {status}"):
            await client.call("GET", "/x")
    assert len(transport.calls) == 1


async def test_a_hanging_server_is_cut_by_the_timeout() -> None:
    class Hang(httpx.AsyncBaseTransport):
        calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            Hang.calls += 1
            await asyncio.sleep(30)
            raise AssertionError("unreachable")

    async with client_for(Hang(), retries=1, timeout_seconds=0.05) as client:
        with pytest.raises(ContainerError) as caught:
            await client.call("GET", "/x")
    assert caught.value.details["fault"] == "ReadTimeout" and Hang.calls == 2


async def test_api_key_is_sent_from_the_named_env_var() -> None:
    app = create_app(api_key="k-123")
    config = ContainerConfig(url="http://container.test", api_key_env="REF_KEY", retries=0)
    transport = httpx.ASGITransport(app=app)
    async with ContainerClient.from_config(
        config, "http://container.test", environ={"REF_KEY": "k-123"}, transport=transport
    ) as client:
        assert (await client.get_json("/program"))["program_id"] == "keywords"
    async with ContainerClient("http://container.test", retries=0, transport=transport) as client:
        with pytest.raises(ContainerError, match="HTTP 401"):
            await client.get_json("/program")
    with pytest.raises(ConfigError, match="REF_KEY"):
        ContainerClient.from_config(config, "http://container.test", environ={})


def rollout_body(
    seed: int, prompt: str = "accuracy json tone", mode: str = "sync"
) -> dict[str, Any]:
    return {
        "task_id": "keywords",
        "candidate": {"system_prompt": prompt},
        "policy": {"backend": "offline"},
        "dataset_row": make_row("train", seed),
        "metadata": {"candidate_id": "c0", "split": "train", "seed": seed},
        "submission_mode": mode,
    }


async def test_async_submission_polls_until_terminal() -> None:
    # the rollout outlasts many poll intervals, so the client polls more than once even
    # on a busy machine
    app = create_app(async_latency_seconds=0.4)
    async with asgi_client(app, poll_interval_seconds=0.005) as client:
        result = await client.rollout("/rollout", rollout_body(3, mode="async"), "async")
    assert result.body["status"] == "completed"
    assert app.state.stats.live("POST /rollout") == 1
    assert app.state.stats.live("GET /rollouts/r-000000") >= 2


async def test_async_timeout_terminates_with_a_reason() -> None:
    app = create_app(async_latency_seconds=5.0)
    async with asgi_client(app, poll_interval_seconds=0.01, timeout_seconds=0.1) as client:
        with pytest.raises(ContainerError, match="terminated") as caught:
            await client.rollout("/rollout", rollout_body(1, mode="async"), "async")
    assert caught.value.details["fault"] == "RolloutTimeout"
    assert "no terminal status" in app.state.stats.terminated["r-000000"]


async def test_in_flight_reaches_max_concurrency_and_never_exceeds_it() -> None:
    app = create_app(latency_seconds=0.02)
    async with asgi_client(app, max_concurrency=6) as client:
        await asyncio.gather(*(client.rollout("/rollout", rollout_body(i)) for i in range(60)))
    stats = app.state.stats
    assert stats.live("POST /rollout") == 60
    assert stats.max_in_flight == 6
