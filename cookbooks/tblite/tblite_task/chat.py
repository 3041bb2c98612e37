"""The `openai_chat` agent: a model behind any OpenAI-compatible chat endpoint.

System message: the playbook (the candidate). First user message: the task and the
rules of the loop. Each answer is one shell command (a fenced block or a bare line) or
``done``; the command's exit code and output go back as the next user message. Token
usage is summed over the episode. The loop ends at ``done``, at the sandbox's command
limit (the verifier then judges the workspace as it is) or when the episode's wall time
runs out (a failed rollout).
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .sandbox import INSIDE_WORKSPACE, CommandResult

MAX_OBSERVATION_CHARS = 4000
RULES = (
    "You are in the folder {cwd}, inside a sandbox without network. "
    "Every command starts in that folder; nothing outside it can be written. "
    "Reply with exactly one shell command per message (in a ```sh fenced block), "
    "or with the single word done when the task is complete."
)


class ChatError(RuntimeError):
    """The model endpoint failed or answered something unusable."""


class ChatUnavailable(ChatError):
    """A transient fault (timeout, connection error, 408/429/5xx): worth retrying."""


@dataclass(frozen=True)
class ChatSettings:
    model: str
    base_url: str
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int | None = 512
    timeout_seconds: float = 60.0


def parse_command(answer: str) -> str | None:
    """The command in a model's answer; None for 'done'."""
    fenced = re.findall(r"```[a-zA-Z]*\n(.*?)```", answer, re.S)
    text = fenced[0].strip() if fenced else answer.strip()
    if not fenced:
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        text = lines[0] if lines else ""
        text = text.strip("`").removeprefix("$ ").strip()
    if re.fullmatch(r"done\.?", text, re.I) or not text:
        return None
    return text


async def complete(
    client: httpx.AsyncClient, settings: ChatSettings, messages: list[dict[str, str]]
) -> tuple[str, dict[str, int]]:
    headers = {}
    if settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise ChatError(f"policy.api_key_env names {settings.api_key_env}, which is not set")
        headers["Authorization"] = f"Bearer {key}"
    body: dict[str, Any] = {
        "model": settings.model,
        "messages": messages,
        "temperature": settings.temperature,
    }
    if settings.max_tokens:
        body["max_tokens"] = settings.max_tokens
    url = settings.base_url.rstrip("/") + "/chat/completions"
    try:
        resp = await client.post(url, json=body, headers=headers, timeout=settings.timeout_seconds)
    except httpx.HTTPError as exc:
        raise ChatUnavailable(f"openai_chat at {url}: {type(exc).__name__}") from exc
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        raise ChatUnavailable(f"openai_chat at {url}: HTTP {resp.status_code}")
    if resp.status_code >= 400:
        raise ChatError(f"openai_chat at {url}: HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        data = resp.json()
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatError(f"openai_chat answer has no message content: {exc}") from exc
    raw = data.get("usage") or {}
    usage = {
        "prompt_tokens": int(raw.get("prompt_tokens") or 0),
        "completion_tokens": int(raw.get("completion_tokens") or 0),
    }
    return content, usage


async def chat_agent(
    playbook: str,
    instruction: str,
    run: Callable[[str], Awaitable[CommandResult]],
    note: Callable[[str], None],
    settings: ChatSettings,
    usage: dict[str, int],
    client: httpx.AsyncClient | None = None,
) -> None:
    messages = [
        {"role": "system", "content": playbook},
        {"role": "user", "content": f"Task: {instruction}\n\n{RULES.format(cwd=INSIDE_WORKSPACE)}"},
    ]
    own = client is None
    client = client or httpx.AsyncClient()
    try:
        while True:
            answer, used = await complete(client, settings, messages)
            for k, v in used.items():
                usage[k] = usage.get(k, 0) + v
            messages.append({"role": "assistant", "content": answer})
            command = parse_command(answer)
            if command is None:
                note("the model said done")
                return
            result = await run(command)  # the sandbox stops the loop at its command limit
            output = result.output
            if len(output) > MAX_OBSERVATION_CHARS:
                output = output[:MAX_OBSERVATION_CHARS] + "\n... (output cut)"
            messages.append(
                {"role": "user", "content": f"exit code {result.exit_code}\n{output}".rstrip()}
            )
    finally:
        if own:
            await client.aclose()
