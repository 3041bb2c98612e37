"""A container whose model is down says so in the contract's error shape, and can be
asked whether its model answers (the optional POST /policy/check) before any rollout;
the optimizer reads both and names the model, not the container (issue 20, items 2-3).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gepa_cli.config import config_from_dict
from gepa_cli.engine.types import EvaluationRequest
from gepa_cli.errors import ContainerError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container import ContainerEvaluator, handshake
from gepa_cli.runtime.preflight import check_policy
from gepa_cli.taskapp import (
    BadRequest,
    Module,
    PolicySettings,
    Rollout,
    RolloutResult,
    TaskApp,
    UpstreamUnavailable,
)
from support.asgi import asgi_client

MODEL = "http://127.0.0.1:8080/v1"


async def needs_its_model(r: Rollout) -> RolloutResult:
    if r.policy.model == "down":
        raise UpstreamUnavailable(r.policy.base_url or "?", "cannot connect (Connection refused)")
    return RolloutResult(reward=1.0)


def check(policy: PolicySettings) -> str:
    if policy.model == "down":
        raise UpstreamUnavailable(policy.base_url or "?", "cannot connect (Connection refused)")
    if policy.model == "nokey":
        raise BadRequest("missing_api_key", "policy.api_key_env names K, which is not set")
    return f"{policy.model} answers at {policy.base_url} (timeout {policy.timeout_seconds:g} s)"


def task(**extra: Any) -> TaskApp:
    return TaskApp(
        name="t",
        modules=[Module(module_id="m", field="prompt", seed="Seed.")],
        splits={"train": 8},
        row=lambda split, seed: {"n": seed},
        rollout=needs_its_model,
        api_key="",
        **extra,
    )


def config(model: str, **gepa: Any) -> Any:
    return config_from_dict(
        {
            "container": {"url": "http://container.test", "max_consecutive_failures": 3},
            "dataset": {"train_seeds": "0:8"},
            "policy": {
                "backend": "openai_chat",
                "model": model,
                "base_url": MODEL,
                "timeout_seconds": 90,
            },
            "proposer": {"command": ["cat"]},
            "gepa": {"max_total_rollouts": 50, **gepa},
        },
        base_dir=".",
        environ={},
    )


def test_an_unavailable_upstream_is_an_error_with_its_url_and_cause() -> None:
    with TestClient(task()) as client:
        body = {
            "candidate": {"prompt": "x"},
            "policy": {"model": "down", "base_url": MODEL},
            "dataset_row": {"n": 0},
        }
        sync = client.post("/rollout", json=body)
        assert sync.status_code == 502
        assert sync.json()["error"] == {
            "code": "upstream_unavailable",
            "message": f"the model at {MODEL} is unavailable: cannot connect (Connection refused)",
            "upstream_url": MODEL,
            "cause": "cannot connect (Connection refused)",
        }
        queued = client.post("/rollout", json={**body, "submission_mode": "async"}).json()
        for _ in range(100):
            polled = client.get(f"/rollouts/{queued['rollout_id']}").json()
            if polled["status"] not in ("queued", "running"):
                break
            asyncio.run(asyncio.sleep(0.01))
        # a polled failure keeps the error object: code, URL and cause
        assert polled["status"] == "failed"
        assert polled["error"]["code"] == "upstream_unavailable"
        assert polled["error"]["upstream_url"] == MODEL


def test_the_policy_check_route_is_optional_and_named_in_metadata() -> None:
    def routes(app: TaskApp) -> dict[str, Any]:
        with TestClient(app) as client:
            meta = client.get("/metadata").json()
            return dict(meta["metadata"]["optimizer_contracts"]["gepa"])

    assert "policy_check_route" not in routes(task())
    assert routes(task(check_policy=check))["policy_check_route"] == "/policy/check"
    with TestClient(task()) as client:
        assert client.post("/policy/check", json={}).status_code == 404
    with TestClient(task(check_policy=check)) as client:
        ok = client.post("/policy/check", json={"policy": {"model": "m", "base_url": MODEL}})
        assert ok.json() == {"status": "ok", "detail": f"m answers at {MODEL} (timeout 60 s)"}
        down = client.post("/policy/check", json={"policy": {"model": "down", "base_url": MODEL}})
        assert down.status_code == 502 and down.json()["error"]["upstream_url"] == MODEL


@pytest.mark.parametrize(
    ("model", "ok", "detail"),
    [
        ("m", True, f"m answers at {MODEL} (timeout 90 s)"),  # [policy] timeout_seconds sent
        ("down", False, f"the policy model at {MODEL} is unreachable: cannot connect"),
        ("nokey", False, "the container refused the policy: missing_api_key policy.api_key_env"),
    ],
)
async def test_the_optimizer_asks_the_container_about_its_policy(
    model: str, ok: bool, detail: str
) -> None:
    cfg = config(model)
    async with asgi_client(task(check_policy=check), retries=3) as client:
        shake = await handshake(cfg, client, NoCache())
        found = await check_policy(cfg, client, shake.routes)
    assert found.ok is ok and found.detail.startswith(detail), found


async def test_a_container_without_the_route_is_not_checked_rather_than_broken() -> None:
    cfg = config("m")
    async with asgi_client(task(), retries=0) as client:
        shake = await handshake(cfg, client, NoCache())
        found = await check_policy(cfg, client, shake.routes)
    assert found.ok is None and "no /policy/check route" in found.detail


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_run_whose_model_is_down_names_the_model_not_the_container(mode: str) -> None:
    cfg = config("down")
    async with asgi_client(task(), retries=1, poll_interval_seconds=0.005) as client:
        shake = await handshake(cfg, client, NoCache())
        evaluator = ContainerEvaluator(
            shake,
            NoCache(),
            client,
            policy=cfg.policy,
            submission_mode=mode,  # type: ignore[arg-type]
            max_consecutive_failures=3,
            log_hint="it runs in-process: its log messages go to gepa-cli's stderr",
        )
        request = EvaluationRequest("c0", {"prompt": "x"}, shake.example_ids("train"), "train")
        with pytest.raises(ContainerError) as caught:
            await evaluator.evaluate(request)
    message = caught.value.one_line()
    assert message.startswith(
        f"the policy model at {MODEL} is unreachable: cannot connect (Connection refused)"
    )
    assert "container.log" not in message and "looks down" not in message
    assert caught.value.details["upstream_url"] == MODEL


def test_a_container_that_looks_down_is_sent_to_a_log_that_exists(tmp_path: Any) -> None:
    from gepa_cli.config.models import ContainerConfig
    from gepa_cli.runtime.container.evaluator import CircuitBreaker
    from gepa_cli.runtime.container.launcher import ContainerLauncher

    def hint(**source: Any) -> str:
        launcher = ContainerLauncher(ContainerConfig(**source), base_dir=tmp_path, log_dir=tmp_path)
        return launcher.log_hint

    assert "container.log" not in hint(app="task:app")
    assert "in-process" in hint(app="task:app")
    assert str(tmp_path / "container.log") in hint(command=["serve"])
    assert "http://127.0.0.1:9000" in hint(url="http://127.0.0.1:9000")

    breaker = CircuitBreaker("http://127.0.0.1:1", 2, 0.5, log_hint=hint(app="task:app"))
    breaker.failure("train:0: HTTP 500: internal_error KeyError: 'x'")
    with pytest.raises(ContainerError) as caught:
        breaker.failure("train:1: HTTP 500: internal_error KeyError: 'x'")
    assert "looks down" in caught.value.message
    assert caught.value.hint and "in-process" in caught.value.hint
