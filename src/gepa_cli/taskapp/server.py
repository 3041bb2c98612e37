"""The contract-v1 FastAPI app behind a `TaskApp` (container-contract.md, routes)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from gepa_cli.contracts import CONTAINER_V1, POLICY_CHECK_KEY, POLICY_CHECK_ROUTE
from gepa_cli.taskapp.execute import execute
from gepa_cli.taskapp.jobs import Jobs, reason_of
from gepa_cli.taskapp.rollout import Rollout
from gepa_cli.taskapp.types import ApiError, BadRequest, PolicySettings

if TYPE_CHECKING:
    from gepa_cli.taskapp.app import TaskApp

MAX_SEEDS_PER_REQUEST = 100_000
log = logging.getLogger("gepa_cli.taskapp")


class RowsRequest(BaseModel):
    split: str
    seeds: list[StrictInt] = Field(max_length=MAX_SEEDS_PER_REQUEST)


class RolloutRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    task_id: str | None = None
    candidate: dict[str, str]
    policy: PolicySettings = Field(default_factory=PolicySettings)
    dataset_row: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict)
    submission_mode: Literal["sync", "async"] = "sync"


class PolicyCheckRequest(BaseModel):
    policy: PolicySettings = Field(default_factory=PolicySettings)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class KeyCheck:
    """A 401 for every route but ``/health`` without the key (``X-API-Key`` or
    ``Authorization: Bearer``). Plain ASGI rather than ``@app.middleware("http")``,
    which runs each request in a task group with memory streams: at 32 rollouts in
    flight that cost more CPU than a cheap rollout itself (bench/rollout_throughput.py)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            headers = Headers(scope=scope)
            given = headers.get("x-api-key")
            auth = headers.get("authorization", "")
            if given is None and auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if given is None or not secrets.compare_digest(given, self.api_key):
                response = error(401, "unauthorized", "missing or wrong API key")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build(task: TaskApp) -> FastAPI:
    jobs = Jobs()
    api_key = task.resolved_api_key()
    limit = asyncio.Semaphore(task.max_concurrency) if task.max_concurrency else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if task.lifespan is not None:
                manager = task.lifespan(task) if _takes_app(task.lifespan) else task.lifespan()
                value = await stack.enter_async_context(manager)
                if isinstance(value, Mapping):
                    task.state.__dict__.update(value)
            try:
                yield
            finally:
                await jobs.cancel_all()

    app = FastAPI(title=f"{task.name} container", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error(400, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(_r: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in the container")
        return error(500, "internal_error", f"{type(exc).__name__}: {exc}")

    if api_key:
        app.add_middleware(KeyCheck, api_key=api_key)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "contract_version": CONTAINER_V1}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        routes = {
            "version": CONTAINER_V1,
            "program_route": "/program",
            "dataset_route": "/dataset",
            "dataset_rows_route": "/dataset/rows",
            "rollout_route": "/rollout",
        }
        if task.check_policy is not None:
            # optional: served and named only when the task can check its policy
            routes[POLICY_CHECK_KEY] = POLICY_CHECK_ROUTE
        return {
            "name": task.name,
            "description": task.description,
            "metadata": {**task.metadata, "optimizer_contracts": {"gepa": routes}},
        }

    @app.get("/program")
    async def program() -> dict[str, Any]:
        return task.program()

    @app.get("/dataset")
    async def dataset() -> dict[str, Any]:
        return {"splits": {name: {"size": size} for name, size in task.split_sizes().items()}}

    @app.post("/dataset/rows")
    async def dataset_rows(body: RowsRequest) -> dict[str, Any]:
        sizes = task.split_sizes()
        if body.split not in sizes:
            raise BadRequest("unknown_split", f"split {body.split!r}; have {sorted(sizes)}")
        size = sizes[body.split]
        bad = [seed for seed in body.seeds if not 0 <= seed < size]
        if bad:
            raise BadRequest(
                "seed_out_of_range",
                f"seeds {bad[:5]} outside 0..{size - 1} of split {body.split!r}",
            )
        return {"rows": [await task.make_row(body.split, seed) for seed in body.seeds]}

    def prepare(req: RolloutRequest) -> dict[str, str]:
        """Checks that need no task code: a bad request is refused before it is queued."""
        if req.task_id not in (None, task.name):
            raise BadRequest("unknown_task", f"task_id {req.task_id!r}; this is {task.name!r}")
        return task.full_candidate(req.candidate)

    async def run(req: RolloutRequest, candidate: dict[str, str], rollout_id: str) -> Any:
        async with limit if limit is not None else contextlib.nullcontext():
            jobs.mark_running(rollout_id)
            # the clock starts when the rollout may run, not while it waits for a slot
            rollout = Rollout(
                candidate=candidate,
                row=req.dataset_row,
                policy=req.policy,
                metadata=req.metadata,
                state=task.state,
                max_seconds=task.max_rollout_seconds,
                max_steps=task.max_steps,
            )
            return await execute(task.rollout, rollout, rollout_id, task.max_rollout_seconds)

    @app.post("/rollout", response_model=None)
    async def rollout(req: RolloutRequest) -> dict[str, Any] | JSONResponse:
        candidate = prepare(req)
        rollout_id = f"r-{uuid.uuid4().hex[:16]}"
        if req.submission_mode == "sync":
            body: dict[str, Any] = await run(req, candidate, rollout_id)
            return body
        jobs.submit(rollout_id, lambda: run(req, candidate, rollout_id))
        return JSONResponse({"rollout_id": rollout_id, "status": "queued"}, status_code=202)

    if task.check_policy is not None:
        check_policy = task.check_policy

        @app.post(POLICY_CHECK_ROUTE)
        async def policy_check(body: PolicyCheckRequest) -> dict[str, Any]:
            detail = check_policy(body.policy)
            if inspect.isawaitable(detail):
                detail = await detail
            return {"status": "ok", "detail": str(detail or "")}

    @app.get("/rollouts/{rollout_id}")
    async def get_rollout(rollout_id: str) -> dict[str, Any]:
        return jobs.get(rollout_id)

    @app.post("/rollouts/{rollout_id}/terminate")
    async def terminate(rollout_id: str, request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = None
        if raw.strip():
            try:
                body = await request.json()
            except ValueError:
                raise BadRequest("invalid_request", "the terminate body is not JSON") from None
        return jobs.terminate(rollout_id, reason_of(body))

    return app


def _takes_app(factory: Any) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )
