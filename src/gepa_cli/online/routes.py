"""The online routes: one router, mounted into the run service with
``create_app(settings, routers=[online_router(...)])`` (`gepa-cli gepa service` does).

Control API (create, list, get, state, prompt, candidates, pause, resume, cancel,
events as a list or as server-sent events resumable with ``Last-Event-ID``): the
service's own keys (``--api-key-env``, ``--keys-file``, ``--keys-env``), checked by the
service, and a session records the client that created it. Traffic side: the proxy
takes only the proxy callers' key (``--proxy-key-env``), so an application never holds
a key that controls sessions; rewards take either. Those two routes are marked
`OWN_KEYS` and check keys here, with the service's `KeyRing`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.ledger import iter_jsonl
from gepa_cli.errors import ConfigError, EventCompareError
from gepa_cli.online.manager import SessionManager
from gepa_cli.online.proxy import chat_completions, openai_error
from gepa_cli.service.app import OWN_KEYS, error_response, presented_key
from gepa_cli.service.context import ServiceContext, client_of, service_context
from gepa_cli.service.errors import ServiceError, UnauthorizedError
from gepa_cli.service.events import event_stream_response
from gepa_cli.service.keys import KeyRing, digest
from gepa_cli.service.routes.runs import ConfigSubmission
from gepa_cli.service.submit import ServiceSettings

PREFIX = "/online/sessions"
log = logging.getLogger("gepa_cli.online")
Context = Annotated[ServiceContext, Depends(service_context)]


async def session_manager(request: Request) -> SessionManager:
    """The sessions of the service (its lifespan opened them). async: FastAPI runs a
    plain function dependency in a worker thread, a cost on every proxied call."""
    manager: SessionManager = request.app.state.online
    return manager


Manager = Annotated[SessionManager, Depends(session_manager)]

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


def proxy_keys(
    env: str | None, control: KeyRing, environ: Mapping[str, str] | None = None
) -> KeyRing:
    """The proxy callers' key, from the variable named by ``--proxy-key-env`` (client
    name ``proxy``); it must be none of the service's own keys."""
    if env is None:
        return KeyRing()
    key = (os.environ if environ is None else environ).get(env)
    if not key:
        raise ConfigError(
            f"--proxy-key-env names {env}, but it is unset or empty",
            hint=f"export {env}=<key> before starting the service",
        )
    owner = control.identify(key)
    if owner is not None:
        raise ConfigError(
            f"--proxy-key-env {env} holds the key of the service's client {owner!r}",
            hint="give the proxy's callers a key of their own, so they cannot control sessions",
        )
    return KeyRing((("proxy", digest(key)),))


class TrafficKeys:
    """Who may send traffic (proxied calls; rewards also take a control key)."""

    def __init__(self, control: KeyRing, proxy: KeyRing) -> None:
        self.control = control
        self.proxy = proxy

    def refusal(self, request: Request, *, control_too: bool) -> str | None:
        """Why a traffic request is refused (None: it may go on)."""
        if not self.proxy.enabled and not self.control.enabled:
            return None  # a service without keys (local use)
        presented = presented_key(request.headers)
        if self.proxy.identify(presented) is not None:
            return None
        if control_too and self.control.identify(presented) is not None:
            return None
        if not self.proxy.enabled:
            return "this service has no proxy key: start it with --proxy-key-env"
        return "missing or wrong API key (send Authorization: Bearer <proxy key>)"


def online_router(settings: ServiceSettings, proxy: KeyRing) -> APIRouter:
    """The online sessions' routes; the sessions open when the service starts and close
    (with their manifests) when it stops."""
    keys = TrafficKeys(settings.keys, proxy)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context: ServiceContext = app.state.service
        manager = SessionManager(settings, context.queue.db)
        await manager.start()
        app.state.online = manager
        try:
            yield
        finally:
            await manager.stop()

    router = APIRouter(prefix=PREFIX, tags=["online"], lifespan=lifespan)

    @router.post("", status_code=201, summary="Create a session from a config")
    async def create(body: ConfigSubmission, request: Request, manager: Manager) -> dict[str, Any]:
        return manager.create(body.model_dump(), client=client_of(request)).info()

    @router.get("", summary="List sessions")
    def listing(manager: Manager) -> dict[str, Any]:
        return {"sessions": manager.listing()}

    @router.get("/{session_id}", summary="A session: lifecycle, traffic, budget, usage")
    def get(session_id: str, manager: Manager) -> dict[str, Any]:
        return manager.get(session_id).info()

    @router.get("/{session_id}/state", summary="Lifecycle state and its history")
    def state(session_id: str, manager: Manager) -> dict[str, Any]:
        fold = manager.get(session_id).fold
        return {
            "session_id": session_id,
            "state": fold.state,
            "stopped_by": fold.stopped_by,
            "terminal": fold.terminal,
            "state_history": fold.state_history,
        }

    @router.get("/{session_id}/prompt", summary="The best candidate's texts")
    def prompt(session_id: str, manager: Manager) -> dict[str, Any]:
        return manager.get(session_id).prompt()

    @router.get("/{session_id}/candidates", summary="Candidates with reward statistics")
    def candidates(session_id: str, manager: Manager) -> dict[str, Any]:
        return {"candidates": manager.get(session_id).candidates()}

    @router.post("/{session_id}/pause", summary="Stop learning; serve the best")
    async def pause(
        session_id: str, manager: Manager, body: LifecycleBody | None = Body(None)
    ) -> dict[str, Any]:
        session = manager.get(session_id)
        await session.pause(body.reason if body else None)
        return session.info()

    @router.post("/{session_id}/resume", summary="Learn again")
    async def resume(
        session_id: str, manager: Manager, body: LifecycleBody | None = Body(None)
    ) -> dict[str, Any]:
        session = manager.get(session_id)
        await session.resume(body.reason if body else None)
        return session.info()

    @router.post("/{session_id}/cancel", summary="End learning for good; serve the best")
    async def cancel(
        session_id: str, manager: Manager, body: LifecycleBody | None = Body(None)
    ) -> dict[str, Any]:
        session = manager.get(session_id)
        await session.cancel(body.reason if body else None, body.serve if body else None)
        return session.info()

    @router.post(
        "/{session_id}/rewards",
        summary="Reward a rollout (proxy or control key)",
        openapi_extra=OWN_KEYS,
    )
    async def reward(
        session_id: str, body: RewardBody, request: Request, manager: Manager
    ) -> Response:
        refusal = keys.refusal(request, control_too=True)
        if refusal is not None:
            return error_response(401, UnauthorizedError.error_code, refusal)
        result = await manager.get(session_id).reward(
            body.rollout_id, body.reward, body.feedback, dict(body.objectives)
        )
        return JSONResponse(result, status_code=201 if result["recorded"] else 200)

    @router.get("/{session_id}/events", summary="Events as a list, from seq after+1")
    def events(
        session_id: str,
        manager: Manager,
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
        session_id: str, manager: Manager, ctx: Context, last_event_id: str | None = Header(None)
    ) -> StreamingResponse:
        session = manager.get(session_id)

        async def status_of() -> str:
            # a session's feed goes on while the service holds it (even a cancelled one
            # still records what it serves): the stream ends when the client leaves
            return "running" if session_id in manager.sessions else "cancelled"

        return event_stream_response(
            session.root / layout.EVENTS,
            status_of,
            last_event_id,
            keepalive_seconds=settings.keepalive_seconds,
            closing=ctx.closing,
        )

    @router.post(
        "/{session_id}/v1/chat/completions",
        summary="OpenAI-compatible chat completions through the session (proxy key)",
        openapi_extra={
            **OWN_KEYS,
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
    async def chat(session_id: str, request: Request, manager: Manager) -> Response:
        refusal = keys.refusal(request, control_too=False)
        if refusal is not None:
            return openai_error(401, refusal, code="invalid_api_key", kind="authentication_error")
        try:
            session = manager.get(session_id)
        except ServiceError as exc:
            return openai_error(
                exc.http_status, exc.one_line(), code=exc.error_code, kind="invalid_request_error"
            )
        try:
            return await chat_completions(session, request)
        except Exception as exc:  # an internal error still answers in the OpenAI shape
            log.exception("proxy call failed")
            return openai_error(
                500,
                f"internal error: {type(exc).__name__}",
                code="internal_error",
                kind="server_error",
            )

    return router
