"""The Banking77 container: contract ``gepa_cli.container.v1`` over FastAPI.

Serve it with ``uvicorn banking77_task.container:app --app-dir cookbooks/banking77``.
Data comes from ``BANKING77_DATA_DIR`` (full CSVs) or the bundled sample. When
``BANKING77_CONTAINER_API_KEY`` is set, every route but ``/health`` needs that key as
``X-API-Key`` or ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import CANDIDATE_FIELD, CONTRACT_VERSION, MODULE_ID, PROGRAM_ID
from .data import Banking77Data, load_default
from .guidance import seed_prompt
from .policy import (
    PolicyRequestError,
    PolicySettings,
    Prediction,
    UpstreamFailedError,
    UpstreamTransientError,
    offline_predict,
    openai_chat_classify,
    reward_info,
)

API_KEY_ENV = "BANKING77_CONTAINER_API_KEY"
BACKENDS = ("offline", "openai_chat")
MAX_KEPT_JOBS = 10_000  # finished async rollouts kept for polling, oldest dropped first


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RowsRequest(BaseModel):
    split: str
    seeds: list[StrictInt] = Field(max_length=100_000)


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    backend: str = "offline"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout_seconds: float = Field(default=60.0, gt=0)


class RolloutRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    task_id: str | None = None
    candidate: dict[str, str]
    policy: PolicyBody = Field(default_factory=PolicyBody)
    dataset_row: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict)
    submission_mode: Literal["sync", "async"] = "sync"


class TerminateRequest(BaseModel):
    reason: str = "terminated by the caller"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(data: Banking77Data | None = None, api_key: str | None = None) -> FastAPI:
    """An app over ``data`` (default: env/sample); ``api_key`` defaults to the env var."""
    data = data if data is not None else load_default()
    api_key = api_key if api_key is not None else (os.environ.get(API_KEY_ENV) or None)
    labels = data.labels
    seed_text = seed_prompt(labels)
    jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
    tasks: dict[str, asyncio.Task[None]] = {}
    state: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        for task in list(tasks.values()):
            task.cancel()
        if "client" in state:
            await state.pop("client").aclose()

    app = FastAPI(title="banking77 container", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(400, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path != "/health":
            given = request.headers.get("x-api-key")
            auth = request.headers.get("authorization", "")
            if given is None and auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if given is None or not secrets.compare_digest(given, api_key):
                return _error(401, "unauthorized", "missing or wrong API key")
        return await call_next(request)

    def client() -> httpx.AsyncClient:
        if "client" not in state:
            state["client"] = httpx.AsyncClient()
        return state["client"]

    def row(split: str, seed: int) -> dict[str, Any]:
        ex = data.splits[split][seed]
        return {
            "example_id": f"{split}:{seed}",
            "split": split,
            "seed": seed,
            "query": ex.text,
            "label": ex.label,
        }

    def resolve_row(body: dict[str, Any]) -> tuple[str, str, str]:
        """(example_id, query, expected label) from the row, or from its example_id."""
        query = body.get("query", body.get("text"))
        label = body.get("label", body.get("category"))
        example_id = str(body.get("example_id", ""))
        if (query is None or label is None) and example_id:
            split, _, seed = example_id.partition(":")
            if split in data.splits and seed.isdigit() and int(seed) < len(data.splits[split]):
                found = row(split, int(seed))
                query = found["query"] if query is None else query
                label = found["label"] if label is None else label
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "invalid_row", "dataset_row needs a non-empty 'query'")
        if not isinstance(label, str) or label not in labels:
            raise ApiError(400, "invalid_row", f"dataset_row label {label!r} is not a label")
        return example_id, query, label

    def prepare(req: RolloutRequest) -> tuple[str, str, str, str]:
        if req.task_id not in (None, PROGRAM_ID):
            raise ApiError(400, "unknown_task", f"task_id {req.task_id!r}; this is {PROGRAM_ID!r}")
        prompt = req.candidate.get(CANDIDATE_FIELD)
        if prompt is None:
            raise ApiError(400, "missing_candidate_field", f"candidate needs {CANDIDATE_FIELD!r}")
        if req.policy.backend not in BACKENDS:
            raise ApiError(
                400, "unknown_backend", f"policy.backend {req.policy.backend!r}; use {BACKENDS}"
            )
        return (prompt, *resolve_row(req.dataset_row))

    async def run(
        req: RolloutRequest, rollout_id: str, prepared: tuple[str, ...]
    ) -> dict[str, Any]:
        prompt, example_id, query, expected = prepared
        p = req.policy
        if p.backend == "offline":
            pred: Prediction = offline_predict(prompt, query, labels)
        else:
            settings = PolicySettings(
                p.backend,
                p.model,
                p.base_url,
                p.api_key_env,
                p.temperature,
                p.max_tokens,
                p.timeout_seconds,
            )
            try:
                pred = await openai_chat_classify(client(), settings, prompt, query, labels)
            except PolicyRequestError as exc:
                raise ApiError(400, exc.code, str(exc)) from exc
            except UpstreamFailedError as exc:
                return {
                    "rollout_id": rollout_id,
                    "status": "failed",
                    "error": str(exc),
                    "metadata": {"example_id": example_id, "backend": p.backend},
                }
        return {
            "rollout_id": rollout_id,
            "status": "completed",
            "reward_info": reward_info(pred.label, expected, query),
            "output": pred.label,
            "trace": {"messages": pred.messages, **pred.detail},
            "usage": pred.usage,
            "metadata": {
                "example_id": example_id,
                "backend": p.backend,
                "candidate_id": req.metadata.get("candidate_id"),
            },
        }

    async def run_job(req: RolloutRequest, rollout_id: str, prepared: tuple[str, ...]) -> None:
        jobs[rollout_id]["status"] = "running"
        try:
            result = await run(req, rollout_id, prepared)
        except asyncio.CancelledError:
            raise
        except (ApiError, UpstreamTransientError) as exc:
            msg = exc.message if isinstance(exc, ApiError) else str(exc)
            result = {"rollout_id": rollout_id, "status": "failed", "error": msg}
        except Exception as exc:  # an async job must end in a terminal state, whatever fails
            result = {"rollout_id": rollout_id, "status": "failed", "error": repr(exc)}
        finally:
            tasks.pop(rollout_id, None)
        if jobs.get(rollout_id, {}).get("status") != "cancelled":
            jobs[rollout_id] = result

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "contract_version": CONTRACT_VERSION}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        routes = {
            "version": CONTRACT_VERSION,
            "program_route": "/program",
            "dataset_route": "/dataset",
            "dataset_rows_route": "/dataset/rows",
            "rollout_route": "/rollout",
        }
        return {
            "name": "banking77",
            "description": "Banking77 intent classification: answer one of 77 labels.",
            "metadata": {"optimizer_contracts": {"gepa": routes}, "data_source": data.source},
        }

    @app.get("/program")
    async def program() -> dict[str, Any]:
        return {
            "version": "prompt_program.v1",
            "program_id": PROGRAM_ID,
            "modules": [
                {
                    "module_id": MODULE_ID,
                    "role": "system",
                    "content": seed_text,
                    "mutable": True,
                    "candidate_field": CANDIDATE_FIELD,
                }
            ],
            "target_modules": [
                {
                    "module_id": MODULE_ID,
                    "candidate_field": CANDIDATE_FIELD,
                    "objective": "accuracy",
                }
            ],
            "seed_candidate": {CANDIDATE_FIELD: seed_text},
            "labels": list(labels),
        }

    @app.get("/dataset")
    async def dataset() -> dict[str, Any]:
        return {"splits": {name: {"size": len(rows)} for name, rows in data.splits.items()}}

    @app.post("/dataset/rows")
    async def dataset_rows(body: RowsRequest) -> dict[str, Any]:
        if body.split not in data.splits:
            raise ApiError(400, "unknown_split", f"split {body.split!r}; have {list(data.splits)}")
        size = len(data.splits[body.split])
        bad = [s for s in body.seeds if not 0 <= s < size]
        if bad:
            raise ApiError(
                400, "seed_out_of_range", f"seeds {bad[:5]} outside 0..{size - 1} of {body.split!r}"
            )
        return {"rows": [row(body.split, s) for s in body.seeds]}

    @app.post("/rollout", response_model=None)
    async def rollout(req: RolloutRequest) -> dict[str, Any] | JSONResponse:
        prepared = prepare(req)
        rollout_id = f"r-{uuid.uuid4().hex[:16]}"
        if req.submission_mode == "sync":
            try:
                return await run(req, rollout_id, prepared)
            except UpstreamTransientError as exc:
                raise ApiError(exc.status_code, "upstream_unavailable", str(exc)) from exc
        jobs[rollout_id] = {"rollout_id": rollout_id, "status": "queued"}
        while len(jobs) > MAX_KEPT_JOBS:
            oldest = next(iter(jobs))
            if oldest in tasks:
                break
            jobs.pop(oldest)
        tasks[rollout_id] = asyncio.create_task(run_job(req, rollout_id, prepared))
        return JSONResponse({"rollout_id": rollout_id, "status": "queued"}, status_code=202)

    def job(rollout_id: str) -> dict[str, Any]:
        if rollout_id not in jobs:
            raise ApiError(404, "unknown_rollout", f"no rollout {rollout_id!r}")
        return jobs[rollout_id]

    @app.get("/rollouts/{rollout_id}")
    async def get_rollout(rollout_id: str) -> dict[str, Any]:
        return job(rollout_id)

    @app.post("/rollouts/{rollout_id}/terminate")
    async def terminate(rollout_id: str, body: TerminateRequest | None = None) -> dict[str, Any]:
        current = job(rollout_id)
        if current["status"] in ("queued", "running"):
            reason = (body or TerminateRequest()).reason
            jobs[rollout_id] = {"rollout_id": rollout_id, "status": "cancelled", "reason": reason}
            task = tasks.pop(rollout_id, None)
            if task is not None:
                task.cancel()
        return jobs[rollout_id]

    return app


app = create_app()
