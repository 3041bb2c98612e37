"""Policies: turn (candidate prompt, query) into a predicted label, and score it.

``offline`` is a deterministic cue matcher driven only by the prompt's guidance lines;
``openai_chat`` asks any OpenAI-compatible chat endpoint. Both produce the same result
shape, so the container and the optimizer cannot tell them apart.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .guidance import PromptDoc, cue_key, tokens

UNKNOWN = "unknown"


@dataclass(frozen=True)
class PolicySettings:
    backend: str = "offline"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int | None = None
    timeout_seconds: float = 60.0
    # extra fields of the chat request ([policy] params: top_p, seed, stop, ...)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    label: str
    messages: list[dict[str, str]]
    usage: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


class PolicyRequestError(ValueError):
    """The rollout asked for something this policy cannot do (a 4xx, never retried)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UpstreamTransientError(RuntimeError):
    """The model endpoint is unreachable, timed out or answered 408/429/5xx: worth
    retrying later. ``url`` is the endpoint's /v1 root, ``cause`` what went wrong."""

    def __init__(self, url: str, cause: str, status_code: int = 502) -> None:
        super().__init__(f"the model at {url} is unavailable: {cause}")
        self.url = url
        self.cause = cause
        self.status_code = status_code


class UpstreamFailedError(RuntimeError):
    """The model endpoint refused the call for good, or answered something unusable."""


def _phrases(words: Sequence[str], longest: int) -> set[tuple[str, ...]]:
    """Every run of up to ``longest`` consecutive words: a cue matches when it is one."""
    return {
        tuple(words[i : i + n])
        for n in range(1, min(longest, len(words)) + 1)
        for i in range(len(words) - n + 1)
    }


Cues = tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]


@functools.lru_cache(maxsize=64)
def _cue_index(prompt: str, labels: tuple[str, ...]) -> tuple[Cues, dict[tuple[str, ...], int]]:
    """Each label's cue keys, in prompt order, and on how many labels each key appears.
    Parsed once per prompt: a search scores one prompt on many queries in a row."""
    known = set(labels)
    entries: list[tuple[str, tuple[tuple[str, ...], ...]]] = []
    seen: set[str] = set()
    for line in PromptDoc.parse(prompt).guidance():
        if line.label in known and line.label not in seen:
            seen.add(line.label)
            keys = tuple(dict.fromkeys(k for k in (cue_key(c) for c in line.cues) if k))
            entries.append((line.label, keys))
    df: dict[tuple[str, ...], int] = {}
    for _, keys in entries:
        for k in keys:
            df[k] = df.get(k, 0) + 1
    return tuple(entries), df


def offline_classify(prompt: str, query: str, labels: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Pick the label whose cues best cover ``query``.

    A matched cue adds (words in the cue) / (labels sharing that cue): long phrases are
    specific, and a cue listed under many labels ('card') says little about any of them.
    Ties go to the label listed first, so the result depends on nothing but the inputs.
    """
    entries, df = _cue_index(prompt, tuple(labels))
    q = _phrases(tokens(query), max(map(len, df), default=0))
    best, best_score, best_cues = UNKNOWN, 0.0, []
    for label, keys in entries:
        matched = [k for k in keys if k in q]
        score = sum(len(k) / df[k] for k in matched)
        if score > best_score + 1e-12:
            best, best_score, best_cues = label, score, matched
    return best, {"score": round(best_score, 6), "matched_cues": [" ".join(k) for k in best_cues]}


def normalize_answer(answer: str, labels: Sequence[str]) -> str:
    """Map a model's free-text answer to a label: exact, then contained, then closest."""
    text = answer.strip().strip("`'\".").strip()
    first = text.splitlines()[0].strip() if text else ""
    lowered = {label.lower(): label for label in labels}
    for cand in (first, text, first.rstrip("?!.:")):
        if cand.lower() in lowered:
            return lowered[cand.lower()]
    low = text.lower()
    contained = [
        label for label in labels if re.search(rf"(?<![\w]){re.escape(label.lower())}", low)
    ]
    if contained:
        return max(contained, key=len)
    close = difflib.get_close_matches(first.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else UNKNOWN


def names_every_label(prompt: str, labels: Sequence[str]) -> bool:
    """True when each label occurs in ``prompt`` as a whole word (as the seed's list does)."""
    return all(re.search(rf"(?<!\w){re.escape(label)}(?!\w)", prompt) for label in labels)


def chat_messages(prompt: str, query: str, labels: Sequence[str]) -> list[dict[str, str]]:
    """The candidate prompt as the system message, then one user message, query last.

    Everything before the query is the same for every query of a candidate, so a server
    with a prompt cache (llama.cpp, vLLM, OpenAI) reads it once and only the query after.
    The label list appears once: in the prompt when it names every label, else in the
    user message, still before the query.
    """
    if names_every_label(prompt, labels):
        instruction = "Answer with exactly one label from the list above."
    else:
        instruction = "Answer with exactly one of these labels: " + ", ".join(labels)
    user = f"{instruction}\n\nCustomer message: {query}"
    return [{"role": "system", "content": prompt}, {"role": "user", "content": user}]


async def openai_chat_classify(
    client: httpx.AsyncClient,
    settings: PolicySettings,
    prompt: str,
    query: str,
    labels: Sequence[str],
) -> Prediction:
    if not settings.model:
        raise PolicyRequestError("invalid_policy", "policy.model is required for openai_chat")
    if not settings.base_url:
        raise PolicyRequestError("invalid_policy", "policy.base_url is required for openai_chat")
    headers = _auth_headers(settings)
    messages = chat_messages(prompt, query, labels)
    # the configured fields win over params of the same name
    body: dict[str, Any] = {
        **settings.params,
        "model": settings.model,
        "messages": messages,
        "temperature": settings.temperature,
    }
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    root = settings.base_url.rstrip("/")
    url = root + "/chat/completions"
    try:
        resp = await client.post(url, json=body, headers=headers, timeout=settings.timeout_seconds)
    except httpx.HTTPError as exc:
        raise _unreachable(root, exc, settings.timeout_seconds) from exc
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        code = 429 if resp.status_code == 429 else 502
        cause = f"HTTP {resp.status_code}: {_snippet(resp.text)}"
        raise UpstreamTransientError(root, cause, code)
    if resp.status_code >= 400:
        raise UpstreamFailedError(
            f"openai_chat answered HTTP {resp.status_code}: {resp.text[:200]}"
        )
    try:
        data = resp.json()
        answer = data["choices"][0]["message"]["content"]
        if not isinstance(answer, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamFailedError(f"openai_chat answer has no message content: {exc}") from exc
    raw_usage = data.get("usage") or {}
    usage = {
        "prompt_tokens": int(raw_usage.get("prompt_tokens") or 0),
        "completion_tokens": int(raw_usage.get("completion_tokens") or 0),
    }
    label = normalize_answer(answer, labels)
    messages = [*messages, {"role": "assistant", "content": answer}]
    return Prediction(label, messages, usage, {"raw_answer": answer})


def _auth_headers(settings: PolicySettings) -> dict[str, str]:
    if not settings.api_key_env:
        return {}
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise PolicyRequestError(
            "missing_api_key",
            f"policy.api_key_env names {settings.api_key_env}, which is not set "
            "in the container's environment",
        )
    return {"Authorization": f"Bearer {key}"}


def _snippet(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _unreachable(root: str, exc: httpx.HTTPError, timeout: float) -> UpstreamTransientError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTransientError(root, f"no answer within {timeout:g} s", 504)
    return UpstreamTransientError(root, _reason(exc))


def _reason(exc: BaseException) -> str:
    """The OS's reason ("Connection refused") under httpx's "All connection attempts
    failed", else the error itself."""
    node: BaseException | None = exc
    while node is not None:
        if isinstance(node, OSError) and node.errno:
            return f"cannot connect ({os.strerror(node.errno)})"
        node = node.__cause__ or node.__context__
    return f"{type(exc).__name__}: {exc}"


async def check_openai_chat(client: httpx.AsyncClient, settings: PolicySettings) -> str:
    """Whether the endpoint answers ``GET {base_url}/models`` with this key: a check
    that spends no tokens. Raises like a rollout would; returns what it found."""
    if not settings.base_url:
        raise PolicyRequestError("invalid_policy", "policy.base_url is required for openai_chat")
    headers = _auth_headers(settings)
    root = settings.base_url.rstrip("/")
    try:
        resp = await client.get(root + "/models", headers=headers, timeout=settings.timeout_seconds)
    except httpx.HTTPError as exc:
        raise _unreachable(root, exc, settings.timeout_seconds) from exc
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        cause = f"HTTP {resp.status_code}: {_snippet(resp.text)}"
        raise UpstreamTransientError(root, cause, 429 if resp.status_code == 429 else 502)
    if resp.status_code in (401, 403):
        raise PolicyRequestError(
            "upstream_refused",
            f"the model at {root} refused the key (HTTP {resp.status_code}); "
            f"check the variable named by policy.api_key_env",
        )
    if resp.status_code >= 400:
        # some compatible servers serve chat without listing models: reachable is enough
        return f"the model endpoint at {root} answers (GET /models: HTTP {resp.status_code})"
    try:
        listed = [str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict)]
    except (ValueError, AttributeError):
        listed = []
    if settings.model and listed and settings.model not in listed:
        shown = ", ".join(listed[:5]) + (", ..." if len(listed) > 5 else "")
        return (
            f"the model endpoint at {root} answers, but does not list {settings.model!r} ({shown})"
        )
    return f"the model endpoint at {root} answers" + (
        f" and serves {settings.model!r}" if settings.model in listed else ""
    )


def offline_predict(prompt: str, query: str, labels: Sequence[str]) -> Prediction:
    label, detail = offline_classify(prompt, query, labels)
    messages = [
        {"role": "system", "content": prompt},
        {"role": "user", "content": query},
        {"role": "assistant", "content": label},
    ]
    return Prediction(label, messages, {"prompt_tokens": 0, "completion_tokens": 0}, detail)


def feedback(predicted: str, expected: str, query: str) -> str:
    if predicted == expected:
        return f"Correct: {expected}."
    return f"Wrong: predicted {predicted}, expected {expected}. Query: {query}"


def reward_info(predicted: str, expected: str, query: str) -> dict[str, Any]:
    reward = 1.0 if predicted == expected else 0.0
    return {
        "outcome_reward": reward,
        "objectives": {"accuracy": reward},
        "feedback": feedback(predicted, expected, query),
    }
