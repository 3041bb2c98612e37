"""The async HTTP client for contract v1: one pool, bounded concurrency, calm retries.

Transient faults (connect errors, timeouts, dropped connections, 408, 429, 5xx) are
retried with exponential backoff and jitter, up to ``retries`` times. Jitter only
changes *when* a call is retried, never what it returns, so results stay
deterministic. Other 4xx answers are the caller's mistake and are not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from gepa_cli.config.models import ContainerConfig
from gepa_cli.contracts import UPSTREAM_UNAVAILABLE
from gepa_cli.errors import ConfigError, ContainerContractError, ContainerError
from gepa_cli.runtime.container.contract import PENDING_STATUSES, TERMINAL_STATUSES, violation
from gepa_cli.runtime.container.transport import AiohttpSender, Answer, HttpxSender, Sender

RETRY_STATUSES = frozenset({408, 429})
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,  # connect errors, read/write timeouts, resets, protocol errors
    asyncio.TimeoutError,  # the per-attempt deadline below
)
MAX_BACKOFF_SECONDS = 10.0
BACKSTOP_FACTOR = 2.0
SubmissionMode = Literal["sync", "async"]


@dataclass(frozen=True)
class CallResult:
    body: Any  # decoded JSON
    status_code: int
    attempts: int
    faults: tuple[str, ...] = ()  # what the retried attempts met, in order


def fault_name(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "ReadTimeout"
    return type(exc).__name__


class ContainerClient:
    """Talks to one container. Use as ``async with ContainerClient(...) as client``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 60.0,
        retries: int = 3,
        backoff_seconds: float = 0.2,
        max_concurrency: int = 8,
        poll_interval_seconds: float = 0.05,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_concurrency = max_concurrency
        self.poll_interval_seconds = poll_interval_seconds
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._jitter = random.Random()  # timing only; never seeds anything that is recorded
        headers = {"X-API-Key": api_key} if api_key else {}
        self._sender: Sender = (
            AiohttpSender(self.base_url, headers, timeout_seconds, max_concurrency + 1)
            if transport is None
            else HttpxSender(self.base_url, headers, timeout_seconds, transport)
        )

    @classmethod
    def from_config(
        cls,
        config: ContainerConfig,
        base_url: str,
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ContainerClient:
        env = os.environ if environ is None else environ
        api_key: str | None = None
        if config.api_key_env:
            api_key = env.get(config.api_key_env)
            if not api_key:
                raise ConfigError(
                    f"container.api_key_env names {config.api_key_env}, but that environment "
                    "variable is not set",
                    hint=f"export {config.api_key_env}=<the container's key> or remove api_key_env",
                )
        return cls(
            base_url,
            timeout_seconds=config.request_timeout_seconds,
            retries=config.retries,
            backoff_seconds=config.retry_backoff_seconds,
            max_concurrency=config.max_concurrency,
            poll_interval_seconds=config.poll_interval_seconds,
            api_key=api_key,
            transport=transport,
        )

    async def __aenter__(self) -> ContainerClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sender.aclose()

    # -- one call with retries -------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        accept: tuple[int, ...] = (200,),
        retries: int | None = None,
    ) -> CallResult:
        """``method path`` with retries (``retries`` overrides the client's); decoded JSON
        of an answer in ``accept``.

        Raises `ContainerError` once retries are spent or on a non-retried 4xx, and
        `ContainerContractError` when the answer is not JSON.
        """
        route = f"{method} {path}"
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        last_fault = fault = ""
        faults: list[str] = []
        upstream: dict[str, str] = {}  # the container's own model is down (its word)
        retry_after: float | None = None
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff(attempt, retry_after))
            retry_after = None
            try:
                # the transport's own timeouts fire first; the outer deadline is only a
                # backstop for servers that drip bytes slowly (each read within the timeout)
                async with asyncio.timeout(self.timeout_seconds * BACKSTOP_FACTOR):
                    response = await self._request(method, path, content, headers)
            except TRANSIENT_ERRORS as exc:
                last_fault = f"{fault_name(exc)}: {exc}".rstrip(": ")
                fault = fault_name(exc)
                faults.append(fault)
                continue
            if response.status_code in accept:
                body = self._decode(response, route)
                return CallResult(body, response.status_code, attempt + 1, tuple(faults))
            fault = f"HTTP {response.status_code}"
            faults.append(fault)
            answer = _error_message(response)
            last_fault = f"{fault}: {answer}"
            upstream = upstream_fields(response)
            if response.status_code in RETRY_STATUSES or response.status_code >= 500:
                retry_after = _retry_after(response)
                continue
            raise ContainerError(
                f"{route} at {self.base_url} was refused: {last_fault}",
                hint="a 4xx is not retried; check the request, the key (api_key_env) and routes",
                route=route,
                fault=fault,
                faults=faults,
                attempts=attempt + 1,
                answer=answer,
                **upstream,
            )
        attempts = retries + 1
        if upstream:
            raise ContainerError(
                f"{route} at {self.base_url} failed after {attempts} attempts: the "
                f"container's model at {upstream['upstream_url']} is unavailable: "
                f"{upstream['cause']}",
                hint="start the model server or fix [policy] base_url",
                route=route,
                fault=fault,
                faults=faults,
                attempts=attempts,
                **upstream,
            )
        raise ContainerError(
            f"{route} at {self.base_url} failed after {attempts} attempts: {last_fault}",
            hint="check that the container is up and its log; raise container.retries or "
            "request_timeout_seconds if it is only slow",
            route=route,
            fault=fault,
            faults=faults,
            attempts=attempts,
        )

    async def _request(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str] | None
    ) -> Answer:
        return await self._sender.send(method, path, content, headers)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = self.backoff_seconds * (2.0 ** (attempt - 1)) * self._jitter.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, MAX_BACKOFF_SECONDS)

    @staticmethod
    def _decode(response: Answer, route: str) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            pass
        try:
            # stdlib json accepts NaN/Infinity, so a non-finite reward is reported as such
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise violation(
                route, "(body)", "JSON", response.text[:60] or "an empty body"
            ) from None

    # -- routes ----------------------------------------------------------------------

    async def get_json(self, path: str) -> Any:
        async with self._semaphore:
            return (await self.call("GET", path)).body

    async def post_json(self, path: str, body: Any) -> Any:
        async with self._semaphore:
            return (await self.call("POST", path, body)).body

    async def rollout(
        self, path: str, body: Mapping[str, Any], mode: SubmissionMode = "sync"
    ) -> CallResult:
        """Run one rollout; in async mode submit, poll until terminal, terminate on timeout.

        The concurrency slot is held for the whole rollout, backoff included, so a
        struggling container sees fewer requests, not more.
        """
        async with self._semaphore:
            if mode == "sync":
                return await self.call("POST", path, body)
            return await self._rollout_async(path, body)

    async def _rollout_async(self, path: str, body: Mapping[str, Any]) -> CallResult:
        route = f"POST {path}"
        submitted = await self.call("POST", path, body, accept=(200, 202))
        attempts = submitted.attempts
        faults = list(submitted.faults)
        data = submitted.body
        if not isinstance(data, Mapping):
            raise violation(route, "(body)", "a JSON object", data)
        status = data.get("status")
        if status in TERMINAL_STATUSES:
            return submitted  # the container chose to answer synchronously
        if status not in PENDING_STATUSES:
            raise violation(route, "status", '"queued" (or another pending status)', status)
        rollout_id = data.get("rollout_id")
        if not isinstance(rollout_id, str) or not rollout_id:
            raise violation(route, "rollout_id", "a non-empty string", rollout_id)
        status_path = f"/rollouts/{rollout_id}"
        deadline = time.monotonic() + self.timeout_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_interval_seconds)
            polled = await self.call("GET", status_path)
            attempts += polled.attempts - 1
            faults.extend(polled.faults)
            state = polled.body.get("status") if isinstance(polled.body, Mapping) else None
            if state in TERMINAL_STATUSES:
                return CallResult(polled.body, polled.status_code, attempts, tuple(faults))
            if state not in PENDING_STATUSES:
                raise violation(f"GET {status_path}", "status", "a rollout status", state)
        reason = f"no terminal status within {self.timeout_seconds:g}s"
        # the rollout is already lost; a failed terminate must not hide why
        with contextlib.suppress(ContainerError, ContainerContractError):
            await self.call("POST", f"{status_path}/terminate", {"reason": reason})
        raise ContainerError(
            f"rollout {rollout_id} at {self.base_url} timed out: {reason}; it was terminated",
            hint="raise container.request_timeout_seconds if rollouts are legitimately slow",
            route=route,
            fault="RolloutTimeout",
            faults=[*faults, "RolloutTimeout"],
            attempts=attempts,
        )


def _error_message(response: Answer) -> str:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:120].strip() or response.reason_phrase
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        error = data["error"]
        return f"{error.get('code', '')} {error.get('message', '')}".strip()
    if isinstance(data, Mapping) and "detail" in data:
        return str(data["detail"])[:120]
    return response.reason_phrase


def upstream_fields(response: Answer) -> dict[str, str]:
    """``upstream_url`` and ``cause`` of an ``upstream_unavailable`` error answer (the
    container says the model its rollouts call is down), else nothing."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    error = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(error, Mapping) or error.get("code") != UPSTREAM_UNAVAILABLE:
        return {}
    url, cause = error.get("upstream_url"), error.get("cause")
    return {
        "upstream_url": str(url) if url else "(not named by the container)",
        "cause": _one_line(str(cause or error.get("message") or "no cause given")),
    }


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _retry_after(response: Answer) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
