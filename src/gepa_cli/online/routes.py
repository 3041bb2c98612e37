"""The online routes, mounted into the run service (`gepa-cli gepa service`).

Control API (the service's own key, checked by the service): create, list, get, state,
prompt, candidates, pause, resume, cancel, events (a list, or server-sent events
resumable with ``Last-Event-ID``). Traffic side (checked here): the proxy takes only
the proxy key (``--proxy-key-env``), so an application never holds the key that
controls sessions; rewards take either key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt
from starlette.types import ASGIApp, Receive, Scope, Send

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.ledger import iter_jsonl
from gepa_cli.errors import ConfigError, EventCompareError
from gepa_cli.online.manager import SessionManager
from gepa_cli.online.proxy import chat_completions, openai_error
from gepa_cli.service.app import _authorized, error_response
from gepa_cli.service.errors import BadRequestError
from gepa_cli.service.events import stream_events
from gepa_cli.service.submit import ServiceSettings

PREFIX = "/online/sessions"
TRAFFIC_PATH = re.compile(r"^/online/sessions/[^/]+/(v1/.*|rewards)$")
CHAT_PATH = re.compile(r"^/online/sessions/([^/]+)/v1/chat/completions$")
log = logging.getLogger("gepa_cli.online")

Finite = Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]


CHAT_BODY_SCHEMA = {
    "type": "object",
    "required": ["messages"],
    "description": "An OpenAI chat-completions request; every field but messages and "
    "stream is passed on to the upstream as sent.",
    "properties": {
        "model": {"type": "string"},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string"},
                    "content": {"oneOf": [{"type": "string"}, {"type": "array"}]},
                },
            },
        },
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object"},
    },
}


class SessionSubmission(BaseModel):
    config_path: str | None = Field(None, description="A session config under an allowed root.")
    config_toml: str | None = Field(None, description="The session config itself, as TOML.")
    base_dir: str | None = Field(None, description="Where config_toml's relative paths resolve.")


class RewardBody(BaseModel):
    rollout_id: str = Field(min_length=1, max_length=200, description="x-gepa-rollout-id.")
    reward: Finite = Field(description="A finite number; higher is better.")
    feedback: str | None = Field(None, max_length=100_000, description="Why, in words.")
    objectives: dict[str, Finite] = Field(default_factory=dict, description="Named scores.")


class LifecycleBody(BaseModel):
    reason: str | None = None
    serve: str | None = Field(
        None, description="cancel only: the candidate to serve from now on (default: the best)."
    )


def proxy_key(env: str | None, control_key: str | None) -> str | None:
    """The proxy callers' key from the variable named by ``--proxy-key-env``."""
    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(
            f"--proxy-key-env names {env}, but it is unset or empty",
            hint=f"export {env}=<key> before starting the service",
        )
    if control_key is not None and key == control_key:
        raise ConfigError(
            f"--proxy-key-env {env} holds the same key as --api-key-env",
            hint="give the proxy's callers a key of their own, so they cannot control sessions",
        )
    return key


class OnlineExtension:
    """The `ServiceExtension` that adds online sessions to the run service."""

    def __init__(self, settings: ServiceSettings, proxy_key: str | None) -> None:
        # a line per proxied call would cost more than the call's own bookkeeping
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.settings = settings
        self.proxy_key = proxy_key
        self.manager = SessionManager(settings)

    def authenticates(self, path: str) -> bool:
        return TRAFFIC_PATH.match(path) is not None

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.manager.start()
        try:
            yield
        finally:
            await self.manager.stop()

    def traffic_refusal(self, request: Request, *, control_too: bool) -> str | None:
        """Why a traffic-side request is refused (None: it may go on)."""
        if self.proxy_key is None and self.settings.api_key is None:
            return None  # a service without keys (local use)
        if self.proxy_key is not None and _authorized(request, self.proxy_key):
            return None
        if control_too and self.settings.api_key and _authorized(request, self.settings.api_key):
            return None
        if self.proxy_key is None:
            return "this service has no proxy key: start it with --proxy-key-env"
        return "missing or wrong API key (send Authorization: Bearer <proxy key>)"

    def mount(self, app: FastAPI) -> None:
        app.include_router(build_router(self))
        # outermost: proxied calls skip the service's HTTP middleware and router
        app.add_middleware(ProxyFastPath, extension=self)

    async def chat(self, session_id: str, request: Request) -> Response:
        refusal = self.traffic_refusal(request, control_too=False)
        if refusal is not None:
            return openai_error(401, refusal, code="invalid_api_key", kind="authentication_error")
        session = self.manager.sessions.get(session_id)
        if session is None:
            return openai_error(
                404,
                f"no online session {session_id!r}",
                code="unknown_session",
                kind="invalid_request_error",
            )
        return await chat_completions(session, request)


class ProxyFastPath:
    """Pure ASGI in front of the service: a proxied call is the hot path, so it goes
    straight to the proxy; everything else goes on to the service untouched. The
    FastAPI route of the same path declares it in the OpenAPI document."""

    def __init__(self, app: ASGIApp, extension: OnlineExtension) -> None:
        self.app = app
        self.extension = extension

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            CHAT_PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await self.extension.chat(match.group(1), Request(scope, receive))
        except Exception as exc:  # an internal error still answers in the OpenAI shape
            log.exception("proxy call failed")
            response = openai_error(
                500,
                f"internal error: {type(exc).__name__}",
                code="internal_error",
                kind="server_error",
            )
        await response(scope, receive, send)


def build_router(ext: OnlineExtension) -> APIRouter:
    manager = ext.manager
    router = APIRouter(prefix=PREFIX, tags=["online"])

    @router.post("", status_code=201, summary="Create a session from a config")
    async def create(body: SessionSubmission) -> dict[str, Any]:
        return manager.create(body.model_dump()).info()

    @router.get("", summary="List sessions")
    def listing() -> dict[str, Any]:
        return {"sessions": manager.listing()}

    @router.get("/{session_id}", summary="A session: lifecycle, traffic, budget, usage")
    def get(session_id: str) -> dict[str, Any]:
        return manager.get(session_id).info()

    @router.get("/{session_id}/state", summary="Lifecycle state and its history")
    def state(session_id: str) -> dict[str, Any]:
        fold = manager.get(session_id).fold
        return {
            "session_id": session_id,
            "state": fold.state,
            "stopped_by": fold.stopped_by,
            "terminal": fold.terminal,
            "state_history": fold.state_history,
        }

    @router.get("/{session_id}/prompt", summary="The best candidate's texts")
    def prompt(session_id: str) -> dict[str, Any]:
        return manager.get(session_id).prompt()

    @router.get("/{session_id}/candidates", summary="Candidates with reward statistics")
    def candidates(session_id: str) -> dict[str, Any]:
        return {"candidates": manager.get(session_id).candidates()}

    @router.post("/{session_id}/pause", summary="Stop learning; serve the best")
    async def pause(session_id: str, body: LifecycleBody | None = Body(None)) -> dict[str, Any]:
        session = manager.get(session_id)
        await session.pause(body.reason if body else None)
        return session.info()

    @router.post("/{session_id}/resume", summary="Learn again")
    async def resume(session_id: str, body: LifecycleBody | None = Body(None)) -> dict[str, Any]:
        session = manager.get(session_id)
        await session.resume(body.reason if body else None)
        return session.info()

    @router.post("/{session_id}/cancel", summary="End learning for good; serve the best")
    async def cancel(session_id: str, body: LifecycleBody | None = Body(None)) -> dict[str, Any]:
        session = manager.get(session_id)
        await session.cancel(body.reason if body else None, body.serve if body else None)
        return session.info()

    @router.post("/{session_id}/rewards", summary="Reward a rollout (proxy or control key)")
    async def reward(session_id: str, body: RewardBody, request: Request) -> Response:
        refusal = ext.traffic_refusal(request, control_too=True)
        if refusal is not None:
            return error_response(401, "unauthorized", refusal)
        result = await manager.get(session_id).reward(
            body.rollout_id, body.reward, body.feedback, dict(body.objectives)
        )
        return JSONResponse(result, status_code=201 if result["recorded"] else 200)

    @router.get("/{session_id}/events", summary="Events as a list, from seq after+1")
    def events(
        session_id: str,
        after: int = Query(-1, ge=-1, description="Only events with a larger seq."),
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        path = manager.get(session_id).root / layout.EVENTS
        out: list[dict[str, Any]] = []
        for _, event in iter_jsonl(path, error=EventCompareError):
            if int(event.get("seq", -1)) > after:
                out.append(event)
                if len(out) >= limit:
                    break
        return {"events": out, "next_after": out[-1]["seq"] if out else after}

    @router.get(
        "/{session_id}/events/stream",
        response_class=StreamingResponse,
        summary="Events as server-sent events (resumable with Last-Event-ID)",
    )
    async def stream(
        session_id: str, last_event_id: str | None = Header(None)
    ) -> StreamingResponse:
        session = manager.get(session_id)
        try:
            after = int(last_event_id) if last_event_id not in (None, "") else -1
        except ValueError:
            raise BadRequestError(f"Last-Event-ID {last_event_id!r} is not a seq") from None

        async def status_of() -> str:
            # a session's feed goes on while the service holds it (even a cancelled one
            # still records what it serves): the stream ends when the client leaves
            return "running" if session_id in manager.sessions else "cancelled"

        return StreamingResponse(
            stream_events(
                Path(session.root) / layout.EVENTS,
                status_of,
                after=after,
                keepalive_seconds=ext.settings.keepalive_seconds,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.post(
        "/{session_id}/v1/chat/completions",
        summary="OpenAI-compatible chat completions through the session (proxy key)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": CHAT_BODY_SCHEMA}},
            },
            "responses": {
                "200": {
                    "description": "The upstream's chat completion (or its server-sent "
                    "events when stream is true), with x-gepa-rollout-id, "
                    "x-gepa-candidate-id and x-gepa-session-id headers"
                }
            },
        },
    )
    async def chat(session_id: str, request: Request) -> Response:
        return await ext.chat(session_id, request)

    return router
