"""The TBLite container: contract ``gepa_cli.container.v1`` on the task-app kit.

In-process: ``[container] app = "tblite_task.container:app"``; standalone:
``python -m tblite_task.container --port 8080``. One module (``agent``, candidate field
``system_prompt``: the playbook); rows are the tasks of a split in id order; a rollout is
one sandboxed episode (`episode.run_episode`). Policy settings: ``backend`` (``offline``
or ``openai_chat`` with ``model``, ``base_url``, ``api_key_env``, ``temperature``,
``max_tokens``, ``timeout_seconds``) and ``params.sandbox``, a table of `Limits` fields
that overrides the defaults (``{"command_seconds": 5}``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from gepa_cli.taskapp import (
    Module,
    Rollout,
    RolloutFailed,
    RolloutResult,
    TaskApp,
    Unavailable,
    Usage,
)

from . import CANDIDATE_FIELD, MODULE_ID, PROGRAM_ID, SEED_PLAYBOOK
from .chat import ChatError, ChatSettings, ChatUnavailable
from .episode import run_episode
from .sandbox import Limits, SandboxError, SandboxViolation, isolation_level, sweep_stale
from .tasks import SPLITS, split_tasks

MAX_ROLLOUT_SECONDS = 120.0


def row(split: str, seed: int) -> dict[str, Any]:
    return split_tasks(split)[seed].row_fields()


def _limits(params: Any) -> Limits:
    sandbox = params.get("sandbox") if isinstance(params, dict) else None
    if sandbox is not None and not isinstance(sandbox, dict):
        raise RolloutFailed("policy.params.sandbox must be a table of sandbox limits")
    try:
        return Limits.from_mapping(sandbox)
    except (TypeError, ValueError) as exc:
        raise RolloutFailed(f"policy.params.sandbox: {exc}") from exc


def _chat(policy: Any) -> ChatSettings | None:
    if policy.backend != "openai_chat":
        return None
    if not policy.model or not policy.base_url:
        raise RolloutFailed("openai_chat needs policy.model and policy.base_url")
    return ChatSettings(
        model=policy.model,
        base_url=policy.base_url,
        api_key_env=policy.api_key_env,
        temperature=policy.temperature if policy.temperature is not None else 0.0,
        max_tokens=policy.max_tokens or 512,
        timeout_seconds=policy.timeout_seconds or 60.0,
    )


async def rollout(r: Rollout) -> RolloutResult:
    playbook = r.candidate.get(CANDIDATE_FIELD)
    if not isinstance(playbook, str):
        raise RolloutFailed(f"the candidate has no {CANDIDATE_FIELD!r} text")
    backend = r.policy.backend or "offline"
    if backend == "openai_chat" and isolation_level() != "namespaces":
        # model output is untrusted: never run it without file system and network isolation
        raise RolloutFailed(
            "openai_chat needs the namespace sandbox, which this machine lacks "
            "(see the cookbook README, 'Sandbox')"
        )
    try:
        result = await run_episode(
            playbook, r.row, backend, r, _limits(r.policy.params), _chat(r.policy)
        )
    except SandboxViolation as exc:
        raise RolloutFailed(exc.reason) from exc
    except ChatUnavailable as exc:
        # the optimizer retries the whole episode later, in a fresh sandbox
        raise Unavailable(str(exc)) from exc
    except (SandboxError, ChatError, ValueError) as exc:
        raise RolloutFailed(str(exc)) from exc
    return RolloutResult(
        reward=result.reward,
        objectives=result.objectives,
        feedback=result.feedback(),
        output=result.transcript(),
        usage=Usage(
            prompt_tokens=result.usage.get("prompt_tokens", 0),
            completion_tokens=result.usage.get("completion_tokens", 0),
            cost_usd=0.0 if backend == "offline" else None,
        ),
        metadata={"task_id": result.task.task_id, "commands": len(result.steps)},
    )


# A gepa-cli killed with SIGKILL could not clean up; its episode folders go now.
with contextlib.suppress(OSError):
    sweep_stale()

app = TaskApp(
    name=PROGRAM_ID,
    description="TBLite: small terminal tasks in a sandbox, solved by an agent that follows "
    "the playbook being optimized; a verifier decides pass or fail.",
    modules=[
        Module(
            module_id=MODULE_ID,
            field=CANDIDATE_FIELD,
            seed=SEED_PLAYBOOK,
            role="system",
            objective="pass",
        )
    ],
    splits={split: len(split_tasks(split)) for split in SPLITS},
    row=row,
    rollout=rollout,
    max_rollout_seconds=MAX_ROLLOUT_SECONDS,
)

if __name__ == "__main__":
    app.main()
