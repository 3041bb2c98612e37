"""``POST /online/sessions/{id}/v1/chat/completions``: the OpenAI-compatible proxy.

Per call: check the key and the body, route it to a candidate, inject the candidate's
texts, forward it, record the rollout, and answer with the upstream's answer plus the
``x-gepa-rollout-id`` and ``x-gepa-candidate-id`` headers (also on a stream, whose
headers go out before its first chunk). Every error is an OpenAI-style body.
Per-call work is kept small: no pydantic on the body, one write per ledger line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gepa_cli.online.inject import BadChatBody, answer_of, check_body, check_placeholders, inject
from gepa_cli.online.session import Route, Session
from gepa_cli.online.upstream import (
    Reply,
    StreamBroken,
    StreamTally,
    UpstreamFailure,
    error_body,
)

ROLLOUT_HEADER = "x-gepa-rollout-id"
CANDIDATE_HEADER = "x-gepa-candidate-id"
SESSION_HEADER = "x-gepa-session-id"


def openai_error(
    status: int, message: str, *, code: str, kind: str, param: str | None = None
) -> Response:
    return Response(
        error_body(message, code=code, kind=kind, param=param),
        status_code=status,
        media_type="application/json",
    )


def route_headers(session: Session, route: Route) -> dict[str, str]:
    return {
        ROLLOUT_HEADER: route.rollout_id,
        CANDIDATE_HEADER: route.candidate_id,
        SESSION_HEADER: session.session_id,
    }


async def chat_completions(session: Session, request: Request) -> Response:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
        messages = check_body(body)
        if session.config.online.injection == "placeholders":
            check_placeholders(messages, session.config.target_modules)
    except orjson.JSONDecodeError:
        return openai_error(
            400,
            "the request body is not valid JSON",
            code="invalid_json",
            kind="invalid_request_error",
        )
    except BadChatBody as exc:
        return openai_error(
            400, str(exc), code="invalid_chat_body", kind="invalid_request_error", param=exc.param
        )
    route = session.route()
    config = session.config
    injected = inject(
        messages, route.texts, mode=config.online.injection, system_module=config.system_module
    )
    upstream_body = session.upstream.request_body(body, injected)
    inputs = {"messages": messages, "model": body.get("model")}
    if body.get("stream"):
        return await _stream(session, route, upstream_body, inputs)
    started = time.perf_counter()
    try:
        reply = await session.upstream.complete(upstream_body)
    except UpstreamFailure as failure:
        reply = failure.reply
    session.record_served(
        route,
        status="completed" if reply.ok else "failed",
        inputs=inputs,
        answer=answer_of(reply.completion) if reply.completion is not None else None,
        usage=reply.usage,
        latency_ms=(time.perf_counter() - started) * 1000,
        stream=False,
        upstream_status=None if reply.ok else reply.status,
        error=reply.error,
    )
    return Response(
        reply.body,
        status_code=reply.status,
        media_type="application/json",
        headers=route_headers(session, route),
    )


async def _stream(
    session: Session, route: Route, body: dict[str, Any], inputs: dict[str, Any]
) -> Response:
    options = body.get("stream_options")
    caller_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    # usage is metered on every call: asked of the upstream even when the caller did not
    # ask for it, and that chunk is then kept from the caller
    body = {**body, "stream_options": {**(options or {}), "include_usage": True}}
    started = time.perf_counter()
    headers = route_headers(session, route)

    def record(
        status: str, tally: StreamTally | None, upstream_status: int | None, error: str | None
    ) -> None:
        price = session.upstream.price(body.get("model"))
        session.record_served(
            route,
            status=status,
            inputs=inputs,
            answer=tally.answer if tally is not None else None,
            usage=tally.completion_usage(price)
            if tally is not None
            else StreamTally(False).completion_usage(None),
            latency_ms=(time.perf_counter() - started) * 1000,
            stream=True,
            upstream_status=upstream_status,
            error=error,
        )

    try:
        opened = await session.upstream.open_stream(body)
    except UpstreamFailure as failure:
        opened = failure.reply
    if isinstance(opened, Reply):
        record("failed", None, opened.status, opened.error)
        return Response(
            opened.body, status_code=opened.status, media_type="application/json", headers=headers
        )
    upstream = opened

    async def relay() -> AsyncIterator[bytes]:
        tally = StreamTally(caller_wants_usage)
        recorded = False
        try:
            async for line in upstream.lines():
                if not tally.relay(line):
                    continue
                if tally.done and not recorded:
                    # recorded before [DONE] goes out: a caller that saw the end can reward
                    record("completed", tally, None, None)
                    recorded = True
                yield line.encode() + b"\n"
            if not recorded:
                record("completed", tally, None, None)
                recorded = True
        except StreamBroken as exc:
            if not recorded:
                record("failed", tally, 502, f"stream broke: {exc}")
                recorded = True
        finally:
            if not recorded:
                # the caller went away mid-stream: the answer never arrived whole
                record("aborted", tally, None, "the caller disconnected mid-stream")
            await upstream.close()

    return StreamingResponse(relay(), media_type="text/event-stream", headers=headers)
