"""Submit, list, inspect, control and stream runs."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gepa_cli.artifacts import layout
from gepa_cli.service.context import ServiceContext, client_of, service_context
from gepa_cli.service.errors import BadRequestError, ServiceUnavailableError
from gepa_cli.service.events import event_stream_response
from gepa_cli.service.queue import STATUSES, TERMINAL, now_iso
from gepa_cli.service.submit import submit

router = APIRouter(tags=["runs"])
Context = Annotated[ServiceContext, Depends(service_context)]


class ConfigSubmission(BaseModel):
    """A config to submit (a run's; an online session's too): exactly one of config_path
    and config_toml."""

    config_path: str | None = Field(None, description="A config file under an allowed root.")
    config_toml: str | None = Field(None, description="The config itself, as TOML text.")
    base_dir: str | None = Field(
        None,
        description="For config_toml: where its relative paths resolve (default: "
        "the first allowed root).",
    )


class RunSubmission(ConfigSubmission):
    priority: int = Field(0, description="Higher runs first.")
    auto_start: bool = Field(True, description="False: queue it paused until resumed.")


class ControlBody(BaseModel):
    reason: str | None = None


@router.post("/runs", status_code=201)
def create_run(body: RunSubmission, request: Request, ctx: Context) -> dict[str, Any]:
    if ctx.closing():
        raise ServiceUnavailableError(
            "the service is shutting down", hint="submit to another service process"
        )
    queued = submit(ctx.queue, ctx.settings, body.model_dump(), client=client_of(request))
    ctx.pool.notify()
    return {
        "request_id": queued.request_id,
        "run_id": queued.run_id,
        "status": queued.status,
        "client": queued.client,
    }


@router.get("/runs")
def list_runs(
    ctx: Context,
    status: str | None = Query(None, description="One of " + ", ".join(STATUSES)),
    client: str | None = Query(None, description="Only runs this client submitted."),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise BadRequestError(f"unknown status {status!r}", hint="use " + ", ".join(STATUSES))
    requests, total = ctx.queue.page(status=status, client=client, limit=limit, offset=offset)
    return {
        "runs": [r.to_api() for r in requests],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/runs/{request_id}")
def get_run(request_id: str, ctx: Context) -> dict[str, Any]:
    """The request; while its run is not over, with the run's live progress."""
    found = ctx.queue.get(request_id)
    view = found.to_api()
    if found.status not in TERMINAL and Path(found.run_dir).is_dir():
        view["progress"] = ctx.board.of(found.run_dir).view()
    return view


@router.get("/runs/{request_id}/history")
def run_history(request_id: str, ctx: Context) -> dict[str, Any]:
    """Every lease on the request: who held it, from when to when, and how it ended."""
    found = ctx.queue.get(request_id)
    return {
        "request_id": found.request_id,
        "run_id": found.run_id,
        "leases": [lease.to_api() for lease in ctx.queue.history(found.request_id)],
    }


@router.get("/runs/{request_id}/events", response_class=StreamingResponse)
async def run_events(
    request_id: str, ctx: Context, last_event_id: str | None = Header(None)
) -> StreamingResponse:
    found = await asyncio.to_thread(ctx.queue.get, request_id)

    async def status_of() -> str:
        return (await asyncio.to_thread(ctx.queue.get, found.request_id)).status

    return event_stream_response(
        Path(found.run_dir) / layout.EVENTS,
        status_of,
        last_event_id,
        keepalive_seconds=ctx.settings.keepalive_seconds,
        closing=ctx.closing,
    )


def _control(
    ctx: Context, request: Request, request_id: str, action: str, body: ControlBody | None
) -> dict[str, Any]:
    payload = {
        "reason": (body.reason if body else None),
        "at": now_iso(),
        "action": action,
        "by": client_of(request),
    }
    changed = ctx.queue.control(request_id, action, payload)
    ctx.pool.notify()
    return changed.to_api()


@router.post("/runs/{request_id}/cancel")
def cancel_run(
    request_id: str, request: Request, ctx: Context, body: ControlBody | None = Body(None)
) -> dict[str, Any]:
    return _control(ctx, request, request_id, "cancel", body)


@router.post("/runs/{request_id}/pause")
def pause_run(
    request_id: str, request: Request, ctx: Context, body: ControlBody | None = Body(None)
) -> dict[str, Any]:
    return _control(ctx, request, request_id, "pause", body)


@router.post("/runs/{request_id}/resume")
def resume_run(
    request_id: str, request: Request, ctx: Context, body: ControlBody | None = Body(None)
) -> dict[str, Any]:
    return _control(ctx, request, request_id, "resume", body)


@router.delete("/runs/{request_id}")
def delete_run(
    request_id: str,
    ctx: Context,
    purge: bool = Query(False, description="Also delete the run directory and its logs."),
) -> dict[str, Any]:
    deleted = ctx.queue.delete(request_id)
    if purge:
        shutil.rmtree(deleted.run_dir, ignore_errors=True)
        for suffix in (".out", ".err"):
            (ctx.settings.log_dir / f"{deleted.request_id}{suffix}").unlink(missing_ok=True)
    if deleted.base_dir is not None:
        # a submitted config_toml belongs to its request
        Path(deleted.config_path).unlink(missing_ok=True)
    return {"request_id": deleted.request_id, "deleted": True, "purged": purge}
