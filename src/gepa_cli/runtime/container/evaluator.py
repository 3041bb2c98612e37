"""`ContainerEvaluator`: the engine's `Evaluator` over contract v1 rollouts.

Every rollout goes through the response cache under ``container.rollout``. The cache
key holds only content (task, candidate texts, policy without endpoints, dataset
row), so sync and async runs, and runs against a container on another port, share
entries. Results come back in request order whatever order rollouts finish in; a
rollout that keeps failing is a failed result, and only a container that looks down
stops the run.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from gepa_cli.config.models import PolicyConfig
from gepa_cli.contracts import SYNTH_GEPA_V2, UPSTREAM_UNAVAILABLE
from gepa_cli.engine.types import EvaluationRequest, ExampleResult
from gepa_cli.errors import ContainerContractError, ContainerError, GepaCliError
from gepa_cli.runtime.boundary import ResponseCache
from gepa_cli.runtime.container import synth_v2
from gepa_cli.runtime.container.client import ContainerClient, SubmissionMode
from gepa_cli.runtime.container.contract import RolloutOutcome, parse_rollout, task_fields
from gepa_cli.runtime.container.handshake import HandshakeResult
from gepa_cli.runtime.pricing import Price, price_for, priced

T = TypeVar("T")
# rollouts in a row whose container says its model is down: enough to stop the run
UPSTREAM_TRIP = 3
# transport endpoints, credential pointers and patience say where and how long, not
# what: never part of a key
POLICY_TRANSPORT_FIELDS = ("base_url", "api_key_env", "timeout_seconds")
# how a hint ends when the run can go on once the fault is fixed; the runner, which
# knows whether the run reached a checkpoint, says exactly how (resume, or start again)
THEN_CONTINUE = "then continue the run"


def policy_body(policy: PolicyConfig) -> dict[str, Any]:
    """[policy] as sent to the container: names of secrets at most, never their values.
    Its ``prices`` stay here: the optimizer prices what the container reports."""
    body: dict[str, Any] = {"backend": policy.backend, "temperature": policy.temperature}
    for name in ("model", "base_url", "api_key_env", "max_tokens", "timeout_seconds"):
        value = getattr(policy, name)
        if value is not None:
            body[name] = value
    if policy.params:
        body["params"] = dict(policy.params)
    return body


def _cacheable(response: Mapping[str, Any]) -> bool:
    try:
        return parse_rollout(response).status == "completed"
    except ContainerContractError:
        return False


class CircuitBreaker:
    """Trips when the container, or the model its rollouts call, looks down; not when
    single rollouts fail."""

    def __init__(
        self,
        url: str,
        max_consecutive_failures: int,
        batch_failure_ratio: float,
        log_hint: str = "its log",
    ) -> None:
        self.url = url
        self.max_consecutive = max_consecutive_failures
        self.batch_ratio = batch_failure_ratio
        self.log_hint = log_hint
        self.consecutive = 0
        self.upstream_consecutive = 0
        self.last_errors: deque[str] = deque(maxlen=3)
        # (upstream_url, cause) of each recent failure the container blamed on its model
        self.last_upstream: deque[tuple[str, str] | None] = deque(maxlen=3)

    def success(self) -> None:
        self.consecutive = 0
        self.upstream_consecutive = 0

    def failure(self, error: str, upstream: Mapping[str, Any] | None = None) -> None:
        self.consecutive += 1
        self.last_errors.append(error)
        self.last_upstream.append(
            (str(upstream["upstream_url"]), str(upstream["cause"])) if upstream else None
        )
        self.upstream_consecutive = self.upstream_consecutive + 1 if upstream else 0
        if self.consecutive >= self.max_consecutive:
            raise self._trip(f"{self.consecutive} rollouts in a row failed")
        # the container itself says its model is down, after its own retries and ours:
        # a far stronger sign than failures of unknown cause, so a few are enough
        if self.upstream_consecutive >= min(UPSTREAM_TRIP, self.max_consecutive):
            raise self._trip(f"{self.upstream_consecutive} rollouts in a row could not reach it")

    def check_batch(self, failed: int, total: int, upstream: int = 0) -> None:
        if total and upstream == total:
            raise self._trip(f"all {total} rollouts of a batch could not reach it")
        # small batches are covered by the consecutive rule; a ratio of 1/2 means nothing
        if total >= 4 and failed > total * self.batch_ratio:
            raise self._trip(f"{failed} of {total} rollouts in one batch failed")

    def _trip(self, why: str) -> ContainerError:
        latest = self.last_upstream[-1] if self.last_upstream else None
        if latest is not None:
            # the container is up and says so: name the model that is down, and why
            model_url, cause = latest
            return ContainerError(
                f"the policy model at {model_url} is unreachable: {cause} ({why}; the "
                f"container at {self.url} answers {UPSTREAM_UNAVAILABLE})",
                hint="start the model server or fix [policy] base_url (`gepa-cli gepa "
                f"validate` checks it), {THEN_CONTINUE}",
                url=self.url,
                upstream_url=model_url,
                cause=cause,
            )
        return ContainerError(
            f"the container at {self.url} looks down: {why}; last errors: "
            + " | ".join(self.last_errors),
            hint=f"check the container ({self.log_hint}), {THEN_CONTINUE}",
            url=self.url,
        )


async def gather_in_order(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Results in submission order; the first exception cancels the rest and propagates."""
    tasks = [asyncio.ensure_future(item) for item in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class ContainerEvaluator:
    """Evaluate candidates by rollouts against one container (or its recording)."""

    def __init__(
        self,
        handshake: HandshakeResult,
        cache: ResponseCache,
        client: ContainerClient | None,
        *,
        policy: PolicyConfig | None = None,
        submission_mode: SubmissionMode = "sync",
        max_consecutive_failures: int = 25,
        batch_failure_ratio: float = 0.5,
        log_hint: str = "its log",
    ) -> None:
        self.handshake = handshake
        self.cache = cache
        self.client = client
        policy = policy or PolicyConfig()
        self.policy = policy_body(policy)
        # tokens a container reports without a cost are priced as the policy's model
        self.price: Price | None = price_for(policy.model, policy.prices)
        self.submission_mode = submission_mode
        self._rows = handshake.rows_by_id()
        url = client.base_url if client else "(replay: no container)"
        self.breaker = CircuitBreaker(
            url, max_consecutive_failures, batch_failure_ratio, log_hint=log_hint
        )
        # called as each rollout comes back (a progress display's live count)
        self.on_rollout: Callable[[], None] | None = None

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        return (await self.evaluate_many([request]))[0]

    async def evaluate_many(
        self, requests: Sequence[EvaluationRequest]
    ) -> list[list[ExampleResult]]:
        """Several candidates at once, sharing the concurrency limit; one list per request."""
        jobs = [(req, example_id) for req in requests for example_id in req.example_ids]
        for _, example_id in jobs:
            if example_id not in self._rows:
                raise ValueError(
                    f"example id {example_id!r} is not in the handshake's train/val/heldout rows"
                )
        flat = await gather_in_order(self._one(req, example_id) for req, example_id in jobs)
        failed = sum(1 for result in flat if result.meta.get("transport_failure"))
        upstream = sum(1 for result in flat if result.meta.get("upstream_failure"))
        self.breaker.check_batch(failed, len(flat), upstream)
        grouped: list[list[ExampleResult]] = []
        start = 0
        for req in requests:
            grouped.append(flat[start : start + len(req.example_ids)])
            start += len(req.example_ids)
        return grouped

    def logical_request(self, texts: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        """The cache key material: content only, no ids, URLs or submission mode."""
        policy = {k: v for k, v in self.policy.items() if k not in POLICY_TRANSPORT_FIELDS}
        return {
            "task_id": self.handshake.program_id,
            "candidate": dict(texts),
            "policy": policy,
            "dataset_row": dict(row),
        }

    def rollout_body(self, request: EvaluationRequest, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "task_id": self.handshake.program_id,
            "candidate": dict(request.texts),
            "policy": self.policy,
            "dataset_row": dict(row),
            "metadata": {
                "candidate_id": request.candidate_id,
                "split": row.get("split", request.split),
                "seed": row.get("seed"),
                "role": request.split,
            },
            "submission_mode": self.submission_mode,
        }

    async def _one(self, request: EvaluationRequest, example_id: str) -> ExampleResult:
        result = await self._rollout(request, example_id)
        if self.on_rollout is not None:
            self.on_rollout()
        return result

    async def _rollout(self, request: EvaluationRequest, example_id: str) -> ExampleResult:
        row = self._rows[example_id]
        attempts = 0
        faults: tuple[str, ...] = ()

        async def live() -> dict[str, Any]:
            nonlocal attempts, faults
            if self.client is None:
                raise ContainerError(
                    "a rollout is not in the cache and no container is running (replay mode)",
                    hint="replay needs a complete recording; rerun with cache mode 'readwrite'",
                )
            route = self.handshake.routes.rollout
            v2 = self.handshake.routes.contract == SYNTH_GEPA_V2
            body = self.rollout_body(request, row)
            if v2:
                body = synth_v2.rollout_body(body, row)
            result = await self.client.rollout(route, body, self.submission_mode)
            attempts, faults = result.attempts, result.faults
            if v2:  # recorded in v1 shapes: the cache and the feed stay contract-neutral
                return synth_v2.normalize_rollout(result.body, f"POST {route}")
            if not isinstance(result.body, dict):
                raise ContainerContractError(
                    f"container contract violation at POST {route}: field '(body)' must be a "
                    f"JSON object, got {type(result.body).__name__}",
                    route=f"POST {route}",
                    field="(body)",
                )
            return result.body

        started = time.perf_counter()
        meta: dict[str, Any] = {}
        try:
            body, action = await self.cache.through(
                "container.rollout",
                self.logical_request(request.texts, row),
                live,
                cacheable=_cacheable,
            )
            outcome = parse_rollout(body, f"POST {self.handshake.routes.rollout}")
        except (ContainerError, ContainerContractError) as exc:
            meta = {
                "cache_action": "live",
                "attempts": exc.details.get("attempts", attempts or 1),
                "latency_ms": _ms(started),
                "error_class": type(exc).__name__,
                "fault": exc.details.get("fault", exc.details.get("field")),
                "faults": list(exc.details.get("faults", faults)),
                "transport_failure": True,
            }
            upstream = exc.details if "upstream_url" in exc.details else None
            if upstream is not None:
                meta["upstream_failure"] = True
            self.breaker.failure(f"{example_id}: {exc.message}", upstream)
            return ExampleResult(
                example_id,
                0.0,
                "failed",
                inputs=task_fields(row),
                error=f"{type(exc).__name__}: {exc.one_line()}",
                meta=meta,
            )
        except GepaCliError:
            raise  # CacheMissError and friends are not rollout failures
        upstream = _upstream_failure(body)
        if upstream is not None:
            # a polled (async) rollout whose model was down: the container is fine, the
            # run is not; counted like a failed call so that a dead model stops the run
            self.breaker.failure(f"{example_id}: {outcome.error}", upstream)
        else:
            self.breaker.success()
        meta = {
            "cache_action": action,
            "attempts": attempts,
            "latency_ms": _ms(started),
            "rollout_id": outcome.rollout_id,
        }
        if faults:
            meta["faults"] = list(faults)
        if upstream is not None:
            meta["transport_failure"] = meta["upstream_failure"] = True
        return _result(example_id, row, outcome, request.capture_traces, meta, self.price)


def _upstream_failure(body: Mapping[str, Any]) -> dict[str, str] | None:
    """The upstream's URL and cause of a failed rollout whose error object says
    ``upstream_unavailable`` (as the kit reports a polled rollout's model outage)."""
    error = body.get("error") if body.get("status") != "completed" else None
    if not isinstance(error, Mapping) or error.get("code") != UPSTREAM_UNAVAILABLE:
        return None
    return {
        "upstream_url": str(error.get("upstream_url") or "(not named by the container)"),
        "cause": str(error.get("cause") or error.get("message") or "no cause given"),
    }


def _result(
    example_id: str,
    row: Mapping[str, Any],
    outcome: RolloutOutcome,
    capture_traces: bool,
    meta: dict[str, Any],
    price: Price | None = None,
) -> ExampleResult:
    if outcome.status == "failed":
        meta["error_class"] = "RolloutFailed"
    return ExampleResult(
        example_id=example_id,
        score=outcome.score,
        status="completed" if outcome.status == "completed" else "failed",
        output=outcome.output,
        feedback=outcome.feedback,
        objectives=dict(outcome.objectives),
        usage=priced(outcome.usage, price),
        inputs=task_fields(row),
        trace=outcome.trace if capture_traces else None,
        error=f"RolloutFailed: {outcome.error}" if outcome.status == "failed" else None,
        meta=meta,
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
