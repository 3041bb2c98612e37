"""The ``openai_chat`` policy: an LLM plays, one chat call and one action per step.

System message: the candidate's instructions. User message: how to read the view and
answer, the text observation (status, inventory, the 9x7 local view, what is near) and
the last few actions. The answer's first action name is played; an answer without one
plays ``noop`` and says so in the trace. Token usage is added up over the episode.

Timeouts, connection errors, 408, 429 and 5xx are retried ``RETRIES`` times with a short
backoff; after that, or on any other HTTP error, the episode stops with
``UpstreamError`` (a failed rollout with the reason).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from .episode import Choice
from .facts import ACTIONS
from .game import LEGEND, State

RETRIES = 2
BACKOFF_SECONDS = (0.5, 2.0)
HISTORY = 6
INTERFACE = (
    "You are playing Crafter. The map shows the 9x7 cells around you, north up, one "
    f"character a cell: {LEGEND}. Moving into a cell you cannot enter only turns you to "
    "face it; 'do' hits what you face (collect a material, attack a creature, drink "
    "water, eat). Actions: " + ", ".join(ACTIONS) + "."
)
_ACTION_PATTERNS = [
    (a, re.compile(rf"(?<![a-z_]){re.escape(a).replace('_', '[ _]')}(?![a-z_])"))
    for a in sorted(ACTIONS, key=len, reverse=True)
]


class PolicyError(ValueError):
    """The policy settings cannot work (no model, no base_url, the key's variable unset)."""


class UpstreamError(RuntimeError):
    """The model endpoint failed for good during the episode."""


@dataclass
class ChatSettings:
    model: str
    base_url: str
    api_key: str | None
    temperature: float = 0.0
    max_tokens: int | None = 16
    timeout_seconds: float = 60.0

    @classmethod
    def from_policy(cls, policy: Any) -> ChatSettings:
        model, base_url = getattr(policy, "model", None), getattr(policy, "base_url", None)
        if not model:
            raise PolicyError("policy.model is required for the openai_chat backend")
        if not base_url:
            raise PolicyError("policy.base_url is required for the openai_chat backend")
        key = None
        env = getattr(policy, "api_key_env", None)
        if env:
            key = os.environ.get(env)
            if not key:
                raise PolicyError(
                    f"policy.api_key_env names {env}, which is not set in the container's "
                    "environment"
                )
        max_tokens = getattr(policy, "max_tokens", None)
        return cls(
            model=str(model),
            base_url=str(base_url),
            api_key=key,
            temperature=float(getattr(policy, "temperature", 0.0) or 0.0),
            max_tokens=int(max_tokens) if max_tokens else 16,
            timeout_seconds=float(getattr(policy, "timeout_seconds", 60.0) or 60.0),
        )


def parse_action(answer: str) -> str | None:
    """The first Crafter action named in the answer (``move left`` counts as ``move_left``)."""
    text = answer.lower()
    best: tuple[int, str] | None = None
    for action, pattern in _ACTION_PATTERNS:
        m = pattern.search(text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), action)
    return best[1] if best else None


class ChatPolicy:
    def __init__(
        self, settings: ChatSettings, instructions: str, client: httpx.AsyncClient
    ) -> None:
        self.settings = settings
        self.instructions = instructions
        self.client = client
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.calls = 0
        self.history: deque[str] = deque(maxlen=HISTORY)

    def messages(self, observation: str) -> list[dict[str, str]]:
        recent = ", ".join(self.history) if self.history else "none yet"
        user = (
            f"{INTERFACE}\n\n{observation}\nYour last actions: {recent}.\n"
            "Answer with exactly one action name."
        )
        return [
            {"role": "system", "content": self.instructions},
            {"role": "user", "content": user},
        ]

    async def act(self, state: State, observation: str) -> Choice:
        messages = self.messages(observation)
        answer = await self.complete(messages, state.step)
        action = parse_action(answer)
        # the note groups the steps after a stall in the feedback: say what was played
        note = (
            f"model chose {action}" if action else f"no action in the answer {answer[:60]!r}: noop"
        )
        action = action or "noop"
        self.history.append(action)
        return Choice(
            action,
            note,
            messages=[messages[1], {"role": "assistant", "content": answer}],
        )

    async def complete(self, messages: list[dict[str, str]], step: int) -> str:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "messages": messages,
            "temperature": s.temperature,
        }
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        headers = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
        url = s.base_url.rstrip("/") + "/chat/completions"
        problem = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                await asyncio.sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
            try:
                resp = await self.client.post(
                    url, json=body, headers=headers, timeout=s.timeout_seconds
                )
            except httpx.TimeoutException:
                problem = f"timed out after {s.timeout_seconds:g}s"
                continue
            except httpx.HTTPError as exc:
                problem = f"unreachable ({type(exc).__name__})"
                continue
            if resp.status_code in (408, 429) or resp.status_code >= 500:
                problem = f"HTTP {resp.status_code}"
                continue
            if resp.status_code >= 400:
                raise UpstreamError(
                    f"openai_chat at step {step}: HTTP {resp.status_code}: {resp.text[:200]}"
                )
            return self._answer(resp, step)
        raise UpstreamError(f"openai_chat at step {step}: {problem} after {RETRIES + 1} attempts")

    def _answer(self, resp: httpx.Response, step: int) -> str:
        try:
            data = resp.json()
            answer = data["choices"][0]["message"]["content"]
            if not isinstance(answer, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(
                f"openai_chat at step {step}: the answer has no message content ({exc})"
            ) from exc
        usage = data.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        self.calls += 1
        return answer
