"""The HTTP API (FastAPI): the app, its auth and errors, and the routers mounted on it.

Routes live in routers (`gepa_cli.service.routes`); each reads the service's shared
objects through `ServiceContext` (``Depends(service_context)``). Another front end
mounts its own routes with ``create_app(settings, routers=[its_router])`` or
``app.include_router(...)``: they get the same API keys, error bodies and metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gepa_cli import __version__
from gepa_cli.errors import GepaCliError
from gepa_cli.service.context import ServiceContext
from gepa_cli.service.errors import ServiceError, UnauthorizedError
from gepa_cli.service.metrics import ServiceMetrics
from gepa_cli.service.progress import ProgressBoard
from gepa_cli.service.queue import RunQueue
from gepa_cli.service.routes import ops, results, runs
from gepa_cli.service.submit import ServiceSettings
from gepa_cli.service.worker import WorkerPool

# answered without a key: a load balancer's probe needs no secret
OPEN_PATHS = ("/health",)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def presented_key(request: Request) -> str | None:
    given = request.headers.get("x-api-key")
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token if scheme.lower() == "bearer" else None
    return given


def create_app(
    settings: ServiceSettings,
    *,
    start_workers: bool = True,
    routers: Sequence[APIRouter] = (),
    queue: RunQueue | None = None,
) -> FastAPI:
    queue = queue or RunQueue.open(settings.db, max_connections=settings.workers + 8)
    metrics = ServiceMetrics()
    metrics.watch_queue(queue, settings.stale_after)
    pool = WorkerPool(queue, settings, metrics)
    context = ServiceContext(settings, queue, pool, metrics, ProgressBoard())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start_workers:
            await asyncio.to_thread(pool.start)
        else:
            await asyncio.to_thread(pool.reap)
        try:
            yield
        finally:
            await asyncio.to_thread(pool.stop)
            queue.close()

    app = FastAPI(
        title="gepa-cli service",
        version=__version__,
        description="A durable queue of GEPA runs, each executed in its own process.",
        lifespan=lifespan,
    )
    app.state.service = context
    app.state.queue, app.state.pool, app.state.settings = queue, pool, settings

    @app.middleware("http")
    async def identify_and_time(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        keys = settings.keys
        if keys.enabled and request.url.path not in OPEN_PATHS:
            request.state.client = keys.identify(presented_key(request))
            if request.state.client is None:
                response: Response = error_response(
                    401,
                    UnauthorizedError.error_code,
                    "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                )
                metrics.latency.labels(request.method, "-", "401").observe(
                    time.perf_counter() - started
                )
                return response
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "-")
        metrics.latency.labels(request.method, template, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

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

    for router in (ops.router, runs.router, results.router, *routers):
        app.include_router(router)
    return app
