"""The ``openai_chat`` backend: any OpenAI-compatible ``POST {base_url}/chat/completions``.

Works against OpenAI and against local servers that speak the same protocol (vLLM,
Ollama, llama.cpp server, a LiteLLM proxy). The key is read from the environment
variable named by ``api_key_env`` at call time, inside the live call, so a readonly
cache replay needs no key; it is never logged, cached or put in an error.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from gepa_cli.config.models import Prices, ProposerConfig
from gepa_cli.engine.types import ProposalRequest, ProposalResult
from gepa_cli.errors import ConfigError, ProposerError
from gepa_cli.runtime.boundary import ResponseCache
from gepa_cli.runtime.proposers.pricing import Price, price_for, usage_from_completion
from gepa_cli.runtime.proposers.prompt import parse_answer, render_prompt

BOUNDARY = "proposer.openai_chat"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# only for the default base URL: a local server usually wants no key at all
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
_MESSAGE_LIMIT = 240


class OpenAIChatProposer:
    """Proposes by asking a chat model, with retries on 429, 5xx and network errors."""

    def __init__(
        self,
        *,
        model: str,
        cache: ResponseCache,
        template: str,
        base_url: str | None = None,
        api_key_env: str | None = None,
        temperature: float = 1.0,
        max_tokens: int | None = None,
        timeout_seconds: float = 120.0,
        retries: int = 3,
        prices: Prices | None = None,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(
                f"proposer base_url {url!r} is not an http(s) URL",
                hint="set [proposer] base_url like http://127.0.0.1:11434/v1",
            )
        self.model = model
        self.cache = cache
        self.template = template
        self.base_url = url
        self.endpoint = f"{url}/chat/completions"
        self.host = urlsplit(url).netloc
        self.api_key_env = api_key_env or (DEFAULT_API_KEY_ENV if base_url is None else None)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.price: Price | None = price_for(model, prices)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds

    @classmethod
    def from_config(
        cls, config: ProposerConfig, cache: ResponseCache, template: str
    ) -> OpenAIChatProposer:
        if not config.model:
            raise ConfigError("backend 'openai_chat' needs [proposer] model (e.g. 'gpt-4.1-mini')")
        return cls(
            model=config.model,
            cache=cache,
            template=template,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            timeout_seconds=config.timeout_seconds,
            retries=config.retries,
            prices=config.prices,
        )

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        prompt = render_prompt(self.template, request.current_text, request.records)
        logical: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        body = {key: value for key, value in logical.items() if value is not None}

        async def live() -> dict[str, Any]:
            return await self._post(body)

        completion, action = await self.cache.through(BOUNDARY, logical, live)
        answer = answer_text(completion)
        reason = finish_reason(completion)
        parsed = parse_answer(answer, request.current_text, reason)
        return ProposalResult(
            new_text=parsed.new_text,
            rejection=parsed.rejection,
            usage=usage_from_completion(completion, self.price),
            prompt=prompt,
            raw_output=answer,
            meta={"cache_action": action, "finish_reason": reason},
        )

    async def check(self) -> str:
        """Whether the endpoint answers ``GET {base_url}/models`` and takes the key: no
        tokens spent. Returns what it found; raises `ProposerError` (or `ConfigError`
        for an unset key variable) when a proposal could not be made."""
        key = self._api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{self.base_url}/models"
        try:
            async with httpx.AsyncClient(timeout=min(self.timeout_seconds, 30.0)) as client:
                response = await client.get(url, headers=headers)
        except httpx.TimeoutException:
            raise ProposerError(
                f"the proposer model at {self.base_url} is unreachable: no answer to GET "
                f"/models within {min(self.timeout_seconds, 30.0):g} s",
                hint=_DOWN_HINT,
            ) from None
        except httpx.TransportError as exc:
            raise ProposerError(
                f"the proposer model at {self.base_url} is unreachable: {_transport(exc)}",
                hint=_DOWN_HINT,
            ) from None
        status = response.status_code
        if status in (401, 403):
            raise self._fail(f"HTTP {status}: {error_message(response)}", _status_hint(status), key)
        if status >= 400:
            # some compatible servers serve chat without listing models: reachable is enough
            return f"{self.base_url} answers (GET /models: HTTP {status})"
        try:
            data = response.json().get("data", [])
            listed = [str(m.get("id")) for m in data if isinstance(m, dict)]
        except (ValueError, AttributeError):
            listed = []
        if listed and self.model not in listed:
            shown = ", ".join(listed[:5]) + (", ..." if len(listed) > 5 else "")
            return f"{self.base_url} answers, but does not list {self.model!r} ({shown})"
        served = f" and serves {self.model!r}" if self.model in listed else ""
        return f"{self.base_url} answers{served}"

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ConfigError(
                f"environment variable {self.api_key_env} is not set "
                f"(the API key for the proposer at {self.host})",
                hint=f"export {self.api_key_env}, or change [proposer] api_key_env",
            )
        return key

    def _fail(self, what: str, hint: str, key: str | None) -> ProposerError:
        # a server may echo the key back (e.g. "Incorrect API key provided: sk-...")
        if key:
            what = what.replace(key, "***")
        return ProposerError(f"proposer openai_chat at {self.host}: {what}", hint=hint)

    async def _post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        key = self._api_key()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        attempts = self.retries + 1
        last = ""
        unreachable = False
        async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
            for attempt in range(attempts):
                delay: float | None = None
                try:
                    response = await client.post(self.endpoint, json=body, headers=headers)
                except httpx.TimeoutException:
                    last = f"timed out after {self.timeout_seconds:g} s"
                    unreachable = False
                except httpx.UnsupportedProtocol as exc:
                    raise self._fail(f"unsupported URL ({exc})", _BASE_URL_HINT, key) from exc
                except httpx.TransportError as exc:
                    last = _transport(exc)
                    unreachable = True
                else:
                    unreachable = False
                    status = response.status_code
                    if 200 <= status < 300:
                        return self._completion(response, key)
                    message = error_message(response)
                    if status != 429 and status < 500:
                        raise self._fail(f"HTTP {status}: {message}", _status_hint(status), key)
                    last = f"HTTP {status}: {message}"
                    delay = retry_after_seconds(response, self.max_backoff_seconds)
                if attempt + 1 < attempts:
                    if delay is None:
                        delay = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
                    await asyncio.sleep(delay)
        gave_up = f"(gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
        if unreachable:
            # the server is not there at all: say which URL, as `gepa validate` does
            raise ProposerError(
                f"the proposer model at {self.base_url} is unreachable: {last} {gave_up}",
                hint=_DOWN_HINT,
            )
        raise self._fail(
            f"{last} {gave_up}",
            "check that the server is up, or raise [proposer] timeout_seconds or retries",
            key,
        )

    def _completion(self, response: httpx.Response, key: str | None) -> dict[str, Any]:
        # validated here, inside the live call, so a malformed answer is never cached
        try:
            data = response.json()
        except ValueError:
            data = None
        choices = data.get("choices") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or not isinstance(choices, list)
            or not choices
            or not isinstance(choices[0], dict)
            or not isinstance(choices[0].get("message"), dict)
        ):
            snippet = _one_line(response.text)
            raise self._fail(
                f"malformed chat completion (no choices[0].message): {snippet}",
                "check that base_url points at an OpenAI-compatible /v1 endpoint",
                key,
            )
        return data


_BASE_URL_HINT = "set [proposer] base_url like https://api.openai.com/v1"
_DOWN_HINT = "start the model server or fix [proposer] base_url"


def _transport(exc: httpx.TransportError) -> str:
    """What went wrong, in words: the OS's reason ("Connection refused") rather than
    httpx's "All connection attempts failed"."""
    node: BaseException | None = exc
    while node is not None:
        if isinstance(node, OSError) and node.errno:
            reason = os.strerror(node.errno)
            return f"cannot connect ({reason})" if isinstance(exc, httpx.ConnectError) else reason
        node = node.__cause__ or node.__context__
    detail = str(exc) or "no detail"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({detail})"
    return f"{type(exc).__name__}: {detail}"


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "check the API key in the variable named by [proposer] api_key_env"
    if status == 404:
        return "check [proposer] model and base_url (it usually ends in /v1)"
    return "check [proposer] model, temperature and max_tokens for this server"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 3] + "..."


def error_message(response: httpx.Response) -> str:
    """The error message of an error response: OpenAI's shape, FastAPI's, or the text."""
    try:
        data = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase or "(empty body)"
    message: Any = data
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        message = error.get("message", error) if isinstance(error, dict) else error
    if message is None:
        message = data
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    return _one_line(message) or "(empty message)"


def retry_after_seconds(response: httpx.Response, bound: float) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) clamped to ``[0, bound]``, if present."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, bound))


def finish_reason(completion: Mapping[str, Any]) -> str | None:
    """Why generation ended (``choices[0].finish_reason``: "stop", "length", ...)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    reason = choices[0].get("finish_reason")
    return reason if isinstance(reason, str) and reason else None


def answer_text(completion: Mapping[str, Any]) -> str:
    """The assistant's text in ``choices[0].message.content`` ("" when there is none)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, as some compatible servers send
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
