"""The HTTP API (FastAPI): the app, its auth and errors, and the routers mounted on it.

Routes live in routers (`gepa_cli.service.routes`); each reads the service's shared
objects through `ServiceContext` (``Depends(service_context)``). Another front end
mounts its own routes with ``create_app(settings, routers=[its_router])``: they get the
same API keys, error bodies and metrics, and the router's ``lifespan`` (if it has one)
runs inside the service's, after the workers start and before they stop. A route that
takes callers the service's keys do not cover (the online proxy takes its callers' own
key) says so with ``openapi_extra=OWN_KEYS``, and checks keys itself.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gepa_cli import __version__
from gepa_cli.errors import GepaCliError
from gepa_cli.service.context import ServiceContext
from gepa_cli.service.errors import ServiceError, UnauthorizedError
from gepa_cli.service.keys import KeyRing
from gepa_cli.service.metrics import ServiceMetrics
from gepa_cli.service.progress import ProgressBoard
from gepa_cli.service.queue import RunQueue
from gepa_cli.service.routes import ops, results, runs
from gepa_cli.service.submit import ServiceSettings
from gepa_cli.service.worker import WorkerPool

# answered without a key: a load balancer's probe needs no secret
OPEN_PATHS = ("/health",)
# the OpenAPI extra of a route that checks its callers' keys itself
OWN_KEYS: dict[str, object] = {"x-gepa-own-keys": True}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def presented_key(headers: Headers) -> str | None:
    given = headers.get("x-api-key")
    if given is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        given = token if scheme.lower() == "bearer" else None
    return given


class IdentifyAndTime:
    """Every HTTP request: the client its API key names (``request.state.client``; a 401
    without one, except on open paths and on routes that check their own keys), and its
    latency to the response's start, by route template and status.

    Pure ASGI rather than ``@app.middleware("http")``: that one runs each request in a
    task group with memory streams, which costs a proxied call more than its own work."""

    def __init__(
        self, app: ASGIApp, keys: KeyRing, metrics: ServiceMetrics, own_keys: Callable[[str], bool]
    ) -> None:
        self.app, self.keys, self.metrics, self.own_keys = app, keys, metrics, own_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]

        def observe(status: int) -> None:
            template = getattr(scope.get("route"), "path", "-")
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )

        if self.keys.enabled and path not in OPEN_PATHS and not self.own_keys(path):
            client = self.keys.identify(presented_key(Headers(scope=scope)))
            scope.setdefault("state", {})["client"] = client
            if client is None:
                response = error_response(
                    401,
                    UnauthorizedError.error_code,
                    "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                )
                observe(401)
                await response(scope, receive, send)
                return
        started_response = False

        async def timed_send(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start" and not started_response:
                started_response = True
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except Exception:
            if not started_response:
                observe(500)
            raise


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
    own_paths: list[re.Pattern[str]] = []  # filled once the routers are in

    def own_keys(path: str) -> bool:
        return any(pattern.match(path) for pattern in own_paths)

    app.add_middleware(IdentifyAndTime, keys=settings.keys, metrics=metrics, own_keys=own_keys)

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
    own_paths.extend(
        route.path_regex
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and (route.openapi_extra or {}).keys() & OWN_KEYS.keys()
    )
    return app
