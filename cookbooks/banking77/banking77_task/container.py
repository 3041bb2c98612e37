"""The Banking77 container, written with the task-app kit (`gepa_cli.taskapp`).

Serve it with ``uvicorn banking77_task.container:app --app-dir cookbooks/banking77`` or
``python -m banking77_task.container --port 8077`` (from cookbooks/banking77). Data
comes from ``BANKING77_DATA_DIR`` (full CSVs) or the bundled sample. When
``BANKING77_CONTAINER_API_KEY`` is set, every route but ``/health`` needs that key as
``X-API-Key`` or ``Authorization: Bearer``.
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
    UpstreamUnavailable,
    Usage,
)
from gepa_cli.taskapp import PolicySettings as TaskPolicy

from . import CANDIDATE_FIELD, MODULE_ID, PROGRAM_ID
from .data import Banking77Data, load_default
from .guidance import seed_prompt
from .policy import (
    PolicyRequestError,
    PolicySettings,
    Prediction,
    UpstreamFailedError,
    UpstreamTransientError,
    check_openai_chat,
    offline_predict,
    openai_chat_classify,
    reward_info,
)

API_KEY_ENV = "BANKING77_CONTAINER_API_KEY"
BACKENDS = ("offline", "openai_chat")


def create_app(data: Banking77Data | None = None, api_key: str | None = None) -> TaskApp:
    """A container over ``data`` (default: env/sample); ``api_key`` defaults to the env var."""
    data = data if data is not None else load_default()
    labels = data.labels
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
            clients["chat"] = httpx.AsyncClient()
        return clients["chat"]

    def row(split: str, seed: int) -> dict[str, Any]:
        example = data.splits[split][seed]
        return {"query": example.text, "label": example.label}

    def resolve_row(given: dict[str, Any]) -> tuple[str, str, str]:
        """(example_id, query, expected label) from the row, or from its example_id."""
        query = given.get("query", given.get("text"))
        label = given.get("label", given.get("category"))
        example_id = str(given.get("example_id", ""))
        if (query is None or label is None) and example_id:
            split, _, seed = example_id.partition(":")
            if split in data.splits and seed.isdigit() and int(seed) < len(data.splits[split]):
                found = row(split, int(seed))
                query = found["query"] if query is None else query
                label = found["label"] if label is None else label
        if not isinstance(query, str) or not query.strip():
            raise BadRequest("invalid_row", "dataset_row needs a non-empty 'query'")
        if not isinstance(label, str) or label not in labels:
            raise BadRequest("invalid_row", f"dataset_row label {label!r} is not a label")
        return example_id, query, label

    def settings_of(p: TaskPolicy) -> PolicySettings:
        if p.backend not in BACKENDS:
            raise BadRequest("unknown_backend", f"policy.backend {p.backend!r}; use {BACKENDS}")
        return PolicySettings(
            p.backend,
            p.model,
            p.base_url,
            p.api_key_env,
            p.temperature,
            p.max_tokens,
            p.timeout_seconds,
            dict(p.params),
        )

    async def predict(r: Rollout, prompt: str, query: str) -> Prediction:
        settings = settings_of(r.policy)
        if settings.backend == "offline":
            return offline_predict(prompt, query, labels)
        try:
            return await openai_chat_classify(chat_client(), settings, prompt, query, labels)
        except PolicyRequestError as exc:
            raise BadRequest(exc.code, str(exc)) from exc
        except UpstreamTransientError as exc:  # retried by the optimizer
            raise UpstreamUnavailable(exc.url, exc.cause, status=exc.status_code) from exc
        except UpstreamFailedError as exc:
            raise RolloutFailed(str(exc)) from exc

    async def check_policy(policy: TaskPolicy) -> str:
        """Can a rollout reach its model? Asked by `gepa validate` before any budget."""
        settings = settings_of(policy)
        if settings.backend == "offline":
            return "the offline policy calls no model"
        try:
            return await check_openai_chat(chat_client(), settings)
        except PolicyRequestError as exc:
            raise BadRequest(exc.code, str(exc)) from exc
        except UpstreamTransientError as exc:
            raise UpstreamUnavailable(exc.url, exc.cause, status=exc.status_code) from exc

    async def rollout(r: Rollout) -> RolloutResult:
        settings_of(r.policy)  # an unknown backend is refused before the row is read
        example_id, query, expected = resolve_row(r.row)
        prediction = await predict(r, r.candidate[CANDIDATE_FIELD], query)
        info = reward_info(prediction.label, expected, query)
        r.step(
            observation=query,
            action=prediction.label,
            reward=info["outcome_reward"],
            messages=prediction.messages,
            info=prediction.detail,
        )
        return RolloutResult(
            reward=info["outcome_reward"],
            objectives=info["objectives"],
            feedback=info["feedback"],
            output=prediction.label,
            usage=Usage(
                prompt_tokens=prediction.usage.get("prompt_tokens", 0),
                completion_tokens=prediction.usage.get("completion_tokens", 0),
                cost_usd=prediction.usage.get("cost_usd"),
            ),
            metadata={
                "example_id": example_id,
                "backend": r.policy.backend,
                "candidate_id": r.metadata.get("candidate_id"),
            },
        )

    return TaskApp(
        name=PROGRAM_ID,
        description="Banking77 intent classification: answer one of 77 labels.",
        modules=[
            Module(
                module_id=MODULE_ID,
                field=CANDIDATE_FIELD,
                seed=seed_prompt(labels),
                role="system",
                objective="accuracy",
            )
        ],
        splits={name: len(rows) for name, rows in data.splits.items()},
        row=row,
        rollout=rollout,
        check_policy=check_policy,
        max_rollout_seconds=300.0,  # a backstop: each model call has its own timeout_seconds
        api_key_env=API_KEY_ENV,
        api_key=api_key,
        lifespan=lifespan,
        metadata={"data_source": data.source, "labels": list(labels)},
    )


app = create_app()

if __name__ == "__main__":
    app.main()
