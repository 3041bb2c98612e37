"""500 rollouts through injected 5xx, hangs, dropped connections and malformed bodies."""

from __future__ import annotations

import hashlib

import orjson

from gepa_cli.engine.types import EvaluationRequest
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container import (
    ContainerClient,
    ContainerEvaluator,
    UvicornThread,
    handshake,
)
from support.faults import FaultInjector, FaultRates
from support.reference_container import create_app, keywords_for
from support.task_dir import ConfigFactory

EXPECTED_FAULT = {
    "http_5xx": ("ContainerError", ("HTTP 500", "HTTP 502", "HTTP 503")),
    "hang": ("ContainerError", ("ReadTimeout",)),
    "reset": ("ContainerError", ("RemoteProtocolError", "ReadError")),
    "malformed": ("ContainerContractError", ("(body)", "reward_info.outcome_reward")),
}


async def test_500_rollouts_survive_faults(config_factory: ConfigFactory) -> None:
    rates = FaultRates(http_5xx=0.10, hang=0.05, reset=0.02, malformed=0.01)
    # the client timeout must catch injected hangs but never a slow ok on a busy machine
    injector = FaultInjector(create_app(), rates, seed=7, hang_seconds=20.0)
    config = config_factory(dataset={"train_seeds": "0:50", "val_seeds": "0:50"})
    with UvicornThread(injector, log_level="critical") as url:
        client = ContainerClient(
            url, timeout_seconds=2.0, retries=3, backoff_seconds=0.005, max_concurrency=32
        )
        async with client:
            shake = await handshake(config, client, NoCache())
            evaluator = ContainerEvaluator(shake, NoCache(), client)
            requests = [
                EvaluationRequest(
                    f"c{i}", {"system_prompt": f"v{i} " + WORDS[: 8 * i]}, ids, "train"
                )
                for i, ids in enumerate([shake.example_ids("train")] * 10)
            ]
            batches = await evaluator.evaluate_many(requests)

    results = [result for batch in batches for result in batch]
    assert len(results) == 500
    for request, batch in zip(requests, batches, strict=True):
        assert [r.example_id for r in batch] == list(request.example_ids)

    seen = {"retried_to_success": 0, "failed": 0}
    for request, batch in zip(requests, batches, strict=True):
        bodies = rollout_bodies(evaluator, request)
        for result in batch:
            log = injector.log[key_of(bodies[result.example_id])]
            assert result.meta["attempts"] == len(log)  # the client saw every injected fault
            if result.status == "completed":
                assert log[-1] == "ok" and all(fault != "malformed" for fault in log)
                split, seed = result.example_id.split(":")
                words = keywords_for(split, int(seed))
                prompt = request.texts["system_prompt"]
                assert result.score == sum(w in prompt for w in words) / len(words)
                seen["retried_to_success"] += len(log) > 1
            else:
                seen["failed"] += 1
                error_class, marks = EXPECTED_FAULT[log[-1]]
                assert result.meta["error_class"] == error_class
                assert result.error is not None and result.error.startswith(error_class + ":")
                assert any(mark in result.error for mark in marks), (log, result.error)
                if log[-1] != "malformed":  # transient faults are retried to the limit
                    assert len(log) == 4
    injected = [fault for log in injector.log.values() for fault in log if fault != "ok"]
    assert {"http_5xx", "hang", "reset", "malformed"} <= set(injected)
    assert seen["retried_to_success"] > 50 and seen["failed"] >= 1


WORDS = "accuracy brevity citations clarity examples format honesty json politeness safety steps"


def rollout_bodies(evaluator: ContainerEvaluator, request: EvaluationRequest) -> dict[str, bytes]:
    rows = evaluator.handshake.rows_by_id()
    return {
        example_id: orjson.dumps(evaluator.rollout_body(request, rows[example_id]))
        for example_id in request.example_ids
    }


def key_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]
