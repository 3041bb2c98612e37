"""The HTTP API (FastAPI): submit, list, inspect, control and stream runs."""

from __future__ import annotations

import asyncio
import hmac
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from fastapi import Body, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gepa_cli import __version__
from gepa_cli.artifacts import layout
from gepa_cli.errors import GepaCliError
from gepa_cli.service.errors import BadRequestError, ServiceError, UnauthorizedError
from gepa_cli.service.events import stream_events
from gepa_cli.service.queue import STATUSES, RunQueue, now_iso
from gepa_cli.service.submit import ServiceSettings, submit
from gepa_cli.service.worker import WorkerPool

OPEN_PATHS = ("/health",)


class ServiceExtension(Protocol):
    """Routes mounted into the service by another front end (online sessions): they share
    its app, auth, settings and lifetime without the service importing them."""

    def mount(self, app: FastAPI) -> None:
        """Add routes to ``app`` (called once, after the service's own routes)."""

    def lifespan(self, app: FastAPI) -> AbstractAsyncContextManager[None]:
        """Entered after the workers start, left before they stop."""

    def authenticates(self, path: str) -> bool:
        """True for paths the extension checks keys for itself (the service skips them)."""


class RunSubmission(BaseModel):
    config_path: str | None = Field(None, description="A config file under an allowed root.")
    config_toml: str | None = Field(None, description="The config itself, as TOML text.")
    base_dir: str | None = Field(
        None,
        description="For config_toml: where its relative paths resolve (default: "
        "the first allowed root).",
    )
    priority: int = Field(0, description="Higher runs first.")
    auto_start: bool = Field(True, description="False: queue it paused until resumed.")


class ControlBody(BaseModel):
    reason: str | None = None


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _authorized(request: Request, api_key: str) -> bool:
    given = request.headers.get("x-api-key")
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token if scheme.lower() == "bearer" else None
    return given is not None and hmac.compare_digest(given.encode(), api_key.encode())


def create_app(
    settings: ServiceSettings,
    *,
    start_workers: bool = True,
    extensions: Sequence[ServiceExtension] = (),
) -> FastAPI:
    queue = RunQueue(settings.db_path)
    pool = WorkerPool(queue, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start_workers:
            pool.start()
        else:
            queue.requeue_expired()
        try:
            async with AsyncExitStack() as stack:
                for extension in extensions:
                    await stack.enter_async_context(extension.lifespan(_app))
                yield
        finally:
            await asyncio.to_thread(pool.stop)

    app = FastAPI(
        title="gepa-cli service",
        version=__version__,
        description="A durable queue of GEPA runs, each executed in its own process.",
        lifespan=lifespan,
    )
    app.state.queue, app.state.pool, app.state.settings = queue, pool, settings

    @app.middleware("http")
    async def require_key(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        guarded = (
            settings.api_key
            and path not in OPEN_PATHS
            and not any(extension.authenticates(path) for extension in extensions)
        )
        if guarded and not _authorized(request, settings.api_key or ""):
            return error_response(
                401,
                UnauthorizedError.error_code,
                "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
            )
        return await call_next(request)

    @app.exception_handler(GepaCliError)
    async def on_error(_request: Request, exc: GepaCliError) -> JSONResponse:
        status = exc.http_status if isinstance(exc, ServiceError) else 422
        if not isinstance(exc, ServiceError) and exc.exit_code != 2:
            status = 500
        return error_response(status, exc.error_code, exc.one_line())

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "time": now_iso()}

    @app.get("/status")
    def status() -> dict[str, Any]:
        busy = dict(pool.executor.current)
        return {
            "requests": queue.counts(),
            "workers": [
                {"worker_id": owner, "request_id": busy.get(owner)}
                for owner in [*pool.owners(), *sorted(set(busy) - set(pool.owners()))]
            ],
            "leases": [
                {
                    "request_id": r.request_id,
                    "run_id": r.run_id,
                    "status": r.status,
                    **(r.to_api()["lease"] or {}),
                }
                for r in queue.leases()
            ],
        }

    @app.post("/runs", status_code=201)
    def create_run(body: RunSubmission) -> dict[str, Any]:
        request = submit(queue, settings, body.model_dump())
        pool.notify()
        return {
            "request_id": request.request_id,
            "run_id": request.run_id,
            "status": request.status,
        }

    @app.get("/runs")
    def list_runs(
        status: str | None = Query(None, description="One of " + ", ".join(STATUSES)),
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise BadRequestError(f"unknown status {status!r}", hint="use " + ", ".join(STATUSES))
        requests, total = queue.page(status=status, limit=limit, offset=offset)
        return {
            "runs": [r.to_api() for r in requests],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    @app.get("/runs/{request_id}")
    def get_run(request_id: str) -> dict[str, Any]:
        return queue.get(request_id).to_api()

    @app.get("/runs/{request_id}/events", response_class=StreamingResponse)
    async def run_events(
        request_id: str, last_event_id: str | None = Header(None)
    ) -> StreamingResponse:
        request = await asyncio.to_thread(queue.get, request_id)
        try:
            after = int(last_event_id) if last_event_id not in (None, "") else -1
        except ValueError:
            raise BadRequestError(f"Last-Event-ID {last_event_id!r} is not a seq") from None

        async def status_of() -> str:
            return (await asyncio.to_thread(queue.get, request.request_id)).status

        return StreamingResponse(
            stream_events(
                Path(request.run_dir) / layout.EVENTS,
                status_of,
                after=after,
                keepalive_seconds=settings.keepalive_seconds,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def control(request_id: str, action: str, body: ControlBody | None) -> dict[str, Any]:
        payload = {"reason": (body.reason if body else None), "at": now_iso(), "action": action}
        request = queue.control(request_id, action, payload)
        pool.notify()
        return request.to_api()

    @app.post("/runs/{request_id}/cancel")
    def cancel_run(request_id: str, body: ControlBody | None = Body(None)) -> dict[str, Any]:
        return control(request_id, "cancel", body)

    @app.post("/runs/{request_id}/pause")
    def pause_run(request_id: str, body: ControlBody | None = Body(None)) -> dict[str, Any]:
        return control(request_id, "pause", body)

    @app.post("/runs/{request_id}/resume")
    def resume_run(request_id: str, body: ControlBody | None = Body(None)) -> dict[str, Any]:
        return control(request_id, "resume", body)

    @app.delete("/runs/{request_id}")
    def delete_run(
        request_id: str,
        purge: bool = Query(False, description="Also delete the run directory."),
    ) -> dict[str, Any]:
        request = queue.delete(request_id)
        if purge:
            shutil.rmtree(request.run_dir, ignore_errors=True)
        if request.base_dir is not None:
            # a submitted config_toml belongs to its request
            Path(request.config_path).unlink(missing_ok=True)
        return {"request_id": request.request_id, "deleted": True, "purged": purge}

    @app.post("/worker/run-next")
    def run_next() -> dict[str, Any]:
        request = pool.run_next()
        return {"claimed": request.to_api() if request else None}

    @app.post("/worker/recover")
    def recover() -> dict[str, Any]:
        requeued = queue.requeue_expired()
        pool.notify()
        return {"requeued": requeued}

    for extension in extensions:
        extension.mount(app)
    return app
