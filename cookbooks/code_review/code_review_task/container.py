"""The code-review container, written with the task-app kit (`gepa_cli.taskapp`).

Serve it with ``uvicorn code_review_task.container:app --app-dir cookbooks/code_review``
or ``python -m code_review_task.container --port 8078`` (from cookbooks/code_review).
One module, ``reviewer``, whose candidate field ``checklist`` is the text optimized.
Rows carry the diff (never its labels); each rollout's objectives are precision,
recall and quiet, and its reward their weighted sum (see ``scoring.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gepa_cli.taskapp import (
    BadRequest,
    Module,
    Rollout,
    RolloutFailed,
    RolloutResult,
    TaskApp,
    Unavailable,
    Usage,
)

from . import CANDIDATE_FIELD, MODULE_ID, PROGRAM_ID
from .chat import PolicyError, PolicySettingsError, PolicyUnavailable
from .data import SPLITS, Dataset, load
from .prompt import SEED_CHECKLIST
from .scoring import REWARD_WEIGHTS
from .task import RowError, review

API_KEY_ENV = "CODE_REVIEW_CONTAINER_API_KEY"
OBJECTIVE = " + ".join(f"{w:g} {name}" for name, w in REWARD_WEIGHTS.items())


def create_app(
    dataset: Dataset | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> TaskApp:
    """The container over ``dataset`` (default: the bundled one); ``transport`` replaces
    the network under the openai_chat policy (tests use a fake model)."""
    ds = dataset if dataset is not None else load()
    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            yield
        finally:
            if "chat" in clients:
                await clients.pop("chat").aclose()

    def chat_client() -> httpx.AsyncClient:
        if "chat" not in clients:
            clients["chat"] = httpx.AsyncClient(transport=transport)
        return clients["chat"]

    def row(split: str, seed: int) -> dict[str, Any]:
        return ds.split(split)[seed].row()

    async def rollout(r: Rollout) -> RolloutResult:
        checklist = r.candidate.get(CANDIDATE_FIELD)
        if checklist is None:
            raise BadRequest("missing_candidate_field", f"candidate needs {CANDIDATE_FIELD!r}")
        client = chat_client() if r.policy.backend == "openai_chat" else None
        try:
            out = await review(checklist, r.row, r.policy, client=client, step=r.step, dataset=ds)
        except RowError as exc:
            raise BadRequest("invalid_row", str(exc)) from exc
        except PolicySettingsError as exc:
            raise BadRequest("invalid_policy", str(exc)) from exc
        except PolicyUnavailable as exc:  # retried by the optimizer
            raise Unavailable(str(exc), code="upstream_unavailable", status=exc.status) from exc
        except PolicyError as exc:
            raise RolloutFailed(str(exc)) from exc
        return RolloutResult(
            reward=out.reward,
            objectives=out.objectives,
            feedback=out.feedback,
            output=out.output,
            usage=Usage(
                prompt_tokens=out.usage["prompt_tokens"],
                completion_tokens=out.usage["completion_tokens"],
                cost_usd=0.0 if r.policy.backend == "offline" else None,
            ),
            metadata={"example_id": r.row.get("example_id"), "backend": r.policy.backend},
        )

    return TaskApp(
        name=PROGRAM_ID,
        description="Code review: report the defects of a diff as JSON findings, "
        "scored on precision, recall and noise against labelled defects.",
        modules=[
            Module(
                module_id=MODULE_ID,
                field=CANDIDATE_FIELD,
                seed=SEED_CHECKLIST,
                role="system",
                objective=OBJECTIVE,
            )
        ],
        splits={split: len(ds.split(split)) for split in SPLITS},
        row=row,
        rollout=rollout,
        max_rollout_seconds=180.0,
        api_key_env=API_KEY_ENV,
        lifespan=lifespan,
    )


app = create_app()

if __name__ == "__main__":
    app.main()
