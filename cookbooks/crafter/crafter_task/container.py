"""The Crafter container: contract ``gepa_cli.container.v1`` on the task-app kit.

Three ways to run it (see the README):

- in-process: ``[container] app = "crafter_task.container:app"`` (``gepa.toml``);
- as a child process: ``command = ["{python}", "-m", "crafter_task.container",
  "--port", "{port}"]``;
- standalone: ``python -m crafter_task.container --port 8000`` (from
  ``cookbooks/crafter``), then ``[container] url = "http://127.0.0.1:8000"``.

One rollout plays one episode (``rollout.run_rollout``). A request that cannot be
played (no ``world_seed``, an unknown backend, ``openai_chat`` without a model) is a
400. An episode that goes wrong (the model endpoint failing for good, an exception in
the game or the agent, more steps than ``MAX_STEPS_LIMIT``, longer than
``max_rollout_seconds``) is a ``failed`` rollout with its reason.
"""

from __future__ import annotations

from gepa_cli.taskapp import (
    BadRequest,
    Module,
    Rollout,
    RolloutFailed,
    RolloutResult,
    TaskApp,
    Usage,
)

from . import CANDIDATE_FIELD, MODULE_ID, PROGRAM_ID
from .data import MAX_STEPS_LIMIT, SPLITS, row
from .llm import PolicyError, UpstreamError
from .rollout import RolloutError, run_rollout
from .seed import SEED_PLAYBOOK

# an LLM episode is one chat call a step: minutes, not the kit's default minute
MAX_ROLLOUT_SECONDS = 1800.0


async def rollout(r: Rollout) -> RolloutResult:
    try:
        out = await run_rollout(r.candidate, r.row, r.policy, r.step, check=r.check)
    except RolloutError as exc:
        raise BadRequest(exc.code, str(exc)) from None
    except PolicyError as exc:
        raise BadRequest("invalid_policy", str(exc)) from None
    except UpstreamError as exc:
        raise RolloutFailed(str(exc)) from None
    priced = out.prompt_tokens or out.completion_tokens
    return RolloutResult(
        reward=out.reward,
        objectives=out.objectives,
        feedback=out.feedback,
        output=out.output,
        usage=Usage(
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
            # the offline policy is free; a model's price is not known here
            cost_usd=None if priced else 0.0,
        ),
        metadata=out.metadata,
    )


def create_app(
    *, max_steps: int = MAX_STEPS_LIMIT, max_rollout_seconds: float = MAX_ROLLOUT_SECONDS
) -> TaskApp:
    return TaskApp(
        name=PROGRAM_ID,
        description=(
            "Crafter (crafter 1.8.3): one episode on a fixed world per row; reward = share of "
            "the 22 achievements unlocked; objectives by achievement group."
        ),
        modules=[
            Module(
                module_id=MODULE_ID,
                field=CANDIDATE_FIELD,
                seed=SEED_PLAYBOOK,
                role="system",
                objective="achievements",
            )
        ],
        splits=SPLITS,
        row=lambda split, seed: row(split, seed),
        rollout=rollout,
        max_rollout_seconds=max_rollout_seconds,
        max_steps=max_steps,
    )


app = create_app()

if __name__ == "__main__":
    app.main()
