"""One rollout: the candidate's instructions play the row's world under the policy.

``run_rollout`` is what the container's route calls, and what the tests call directly:
the candidate texts, the dataset row, the policy settings (any object with ``backend``,
``model``, ``base_url``, ``api_key_env``, ``temperature``, ``max_tokens``,
``timeout_seconds`` and ``params``) and a step recorder (``record(observation=...,
action=..., reward=..., messages=..., info=...)``, the trace).

The episode length is the row's ``max_steps``, or ``policy.params["max_steps"]`` when
set (a config can shorten every episode without new rows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import CANDIDATE_FIELD
from .agent import OfflinePolicy
from .data import DEFAULT_MAX_STEPS
from .episode import Episode, StepRecorder, play_episode
from .llm import ChatPolicy, ChatSettings

BACKENDS = ("offline", "openai_chat")


class RolloutError(ValueError):
    """The request cannot be played (the message says what to fix)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class RolloutOutput:
    episode: Episode
    reward: float
    objectives: dict[str, float]
    feedback: str
    output: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def _int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RolloutError("invalid_row", f"{what} must be a whole number >= {low}, got {value!r}")
    return value


def episode_settings(row: Mapping[str, Any], policy: Any) -> tuple[int, int]:
    """(world seed, step limit) from the row, with ``params.max_steps`` overriding."""
    if "world_seed" not in row:
        raise RolloutError(
            "invalid_row", "dataset_row needs 'world_seed' (rows come from /dataset/rows)"
        )
    world_seed = _int(row["world_seed"], "dataset_row.world_seed", 0)
    params = getattr(policy, "params", None) or {}
    if "max_steps" in params:
        try:
            max_steps = _int(params["max_steps"], "policy.params.max_steps", 1)
        except RolloutError as exc:
            raise RolloutError("invalid_policy", str(exc)) from None
    else:
        max_steps = _int(row.get("max_steps", DEFAULT_MAX_STEPS), "dataset_row.max_steps", 1)
    return world_seed, max_steps


async def run_rollout(
    candidate: Mapping[str, str],
    row: Mapping[str, Any],
    policy: Any,
    record: StepRecorder,
    *,
    check: Callable[[], Any] | None = None,
    client: httpx.AsyncClient | None = None,
) -> RolloutOutput:
    instructions = candidate.get(CANDIDATE_FIELD)
    if not isinstance(instructions, str):
        raise RolloutError(
            "missing_candidate_field", f"the candidate needs the text field {CANDIDATE_FIELD!r}"
        )
    world_seed, max_steps = episode_settings(row, policy)
    backend = getattr(policy, "backend", "offline")
    if backend == "offline":
        offline = OfflinePolicy(instructions)
        episode = await play_episode(world_seed, max_steps, offline, record, check=check)
        ignored = [f"line {n}: {text} ({why})" for n, text, why in offline.playbook.ignored]
        output = episode.summary()
        feedback = episode.feedback()
        if ignored:
            output["ignored_rules"] = ignored
            feedback += "\nRules ignored (they do not parse): " + "; ".join(ignored) + "."
        return RolloutOutput(
            episode,
            episode.score,
            episode.objectives(),
            feedback,
            output,
            metadata={"backend": backend, "rules": len(offline.playbook.rules)},
        )
    if backend == "openai_chat":
        settings = ChatSettings.from_policy(policy)
        own = client is None
        http = client or httpx.AsyncClient()
        try:
            chat = ChatPolicy(settings, instructions, http)
            episode = await play_episode(world_seed, max_steps, chat, record, check=check)
        finally:
            if own:
                await http.aclose()
        return RolloutOutput(
            episode,
            episode.score,
            episode.objectives(),
            episode.feedback(),
            episode.summary(),
            prompt_tokens=chat.prompt_tokens,
            completion_tokens=chat.completion_tokens,
            metadata={"backend": backend, "model": settings.model, "calls": chat.calls},
        )
    raise RolloutError(
        "unknown_backend", f"policy.backend {backend!r} is not one of {', '.join(BACKENDS)}"
    )
