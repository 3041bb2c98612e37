"""The ``openai_chat`` policy: one chat completion from any OpenAI-compatible endpoint.

System message: the reviewer instructions with the candidate's checklist; user message:
the pull request title and the numbered diff. The answer's text is returned as it is;
validating it is the grader's job (a malformed answer is a scored failure, not an
error). Everything else raises a :class:`PolicyError`: :class:`PolicySettingsError`
for settings the request got wrong (a 400 from the container, never retried),
:class:`PolicyUnavailable` for timeouts, unreachable endpoints and 408/429/5xx answers
(retried by the optimizer), and plain :class:`PolicyError` for other refusals (a failed
rollout).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from .prompt import system_prompt, user_message

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class PolicyError(RuntimeError):
    """The model could not be asked, or refused for good."""


class PolicySettingsError(PolicyError):
    """The policy settings cannot work (no model, key variable unset, unknown backend)."""


class PolicyUnavailable(PolicyError):
    """A transient fault worth retrying; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    messages: list[dict[str, str]]
    usage: dict[str, int]


def _setting(policy: Any, name: str, default: Any = None) -> Any:
    value = getattr(policy, name, None)
    if value is None and isinstance(policy, dict):
        value = policy.get(name)
    return default if value is None else value


def messages_for(checklist: str, title: str, language: str, diff: Any) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(checklist)},
        {"role": "user", "content": user_message(title, language, diff)},
    ]


async def ask(client: httpx.AsyncClient, policy: Any, messages: list[dict[str, str]]) -> ChatAnswer:
    model = _setting(policy, "model")
    if not model:
        raise PolicySettingsError("policy.model is required for the openai_chat backend")
    base_url = str(_setting(policy, "base_url", DEFAULT_BASE_URL)).rstrip("/")
    headers = {}
    key_env = _setting(policy, "api_key_env")
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise PolicySettingsError(
                f"policy.api_key_env names {key_env}, which is not set in the container's "
                "environment"
            )
        headers["Authorization"] = "Bearer " + key
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": float(_setting(policy, "temperature", 0.0)),
    }
    max_tokens = _setting(policy, "max_tokens")
    if max_tokens is not None:
        body["max_tokens"] = int(max_tokens)
    # extra request fields (response_format, seed, ...) pass through from policy.params
    body.update(_setting(policy, "params", {}) or {})
    url = base_url + "/chat/completions"
    timeout = float(_setting(policy, "timeout_seconds", 60.0))
    try:
        resp = await client.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise PolicyUnavailable(f"openai_chat timed out after {timeout:g}s: {url}", 504) from exc
    except httpx.HTTPError as exc:
        raise PolicyUnavailable(f"openai_chat unreachable: {type(exc).__name__}: {url}") from exc
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        raise PolicyUnavailable(
            f"openai_chat answered HTTP {resp.status_code}: {resp.text[:200]}",
            429 if resp.status_code == 429 else 502,
        )
    if resp.status_code >= 400:
        raise PolicyError(f"openai_chat answered HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        data = resp.json()
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise PolicyError(f"openai_chat answer has no message content: {exc!r}") from exc
    if not isinstance(text, str):
        text = ""  # a refusal or tool call: graded as a malformed answer
    raw = data.get("usage") or {}
    usage = {
        "prompt_tokens": int(raw.get("prompt_tokens") or 0),
        "completion_tokens": int(raw.get("completion_tokens") or 0),
    }
    return ChatAnswer(text, [*messages, {"role": "assistant", "content": text}], usage)
