"""What a run gives back: summary, logs, artifact, candidates; workspace status."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from gepa_cli.service.context import ServiceContext, service_context
from gepa_cli.service.errors import NotFoundError
from gepa_cli.service.logs import follow, log_path, tail_bytes
from gepa_cli.service.queue import ACTIVE
from gepa_cli.service.results import run_artifact, run_candidates, run_summary
from gepa_cli.workspace import workspace_status

router = APIRouter(tags=["results"])
Context = Annotated[ServiceContext, Depends(service_context)]


@router.get("/runs/{request_id}/summary")
def get_summary(request_id: str, ctx: Context) -> dict[str, Any]:
    """The run's result so far: from its live feed while it runs, else its manifest."""
    return run_summary(ctx.queue.get(request_id), ctx.board)


@router.get("/runs/{request_id}/artifact")
def get_artifact(request_id: str, ctx: Context) -> dict[str, Any]:
    """The best candidate's texts, the manifest and the frontier (409 while the run is in
    progress, 404 when it has no best candidate)."""
    return run_artifact(ctx.queue.get(request_id))


@router.get("/runs/{request_id}/candidates")
def get_candidates(
    request_id: str,
    ctx: Context,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """The run's candidates.jsonl rows, in registration order."""
    return run_candidates(ctx.queue.get(request_id), limit=limit, offset=offset)


@router.get("/runs/{request_id}/logs", response_class=PlainTextResponse)
async def get_logs(
    request_id: str,
    ctx: Context,
    stream: Literal["stdout", "stderr"] = Query("stderr", description="Which of the run's."),
    tail: int | None = Query(None, ge=0, description="Only the last N lines (default: all)."),
    follow_: bool = Query(
        False, alias="follow", description="Keep sending what is appended until the run stops."
    ),
) -> Response:
    found = await asyncio.to_thread(ctx.queue.get, request_id)
    path = log_path(ctx.settings.log_dir, found.request_id, stream)
    try:
        head, offset = await asyncio.to_thread(tail_bytes, path, tail)
    except FileNotFoundError:
        if not follow_:
            raise NotFoundError(
                f"request {found.request_id} has no {stream} log yet (it is {found.status})",
                hint="a log starts when a worker starts the run; add follow=true to wait for it",
            ) from None
        head, offset = b"", 0
    if not follow_:
        return PlainTextResponse(head)

    async def active() -> bool:
        status = (await asyncio.to_thread(ctx.queue.get, found.request_id)).status
        return status in (*ACTIVE, "queued")

    async def body() -> Any:
        if head:
            yield head
        async for chunk in follow(path, offset, active, ctx.closing):
            yield chunk

    return StreamingResponse(
        body(), media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@router.get("/workspace")
def get_workspace(ctx: Context) -> dict[str, Any]:
    """`gepa-cli workspace status --json` over the service's run directories."""
    output_dir = ctx.settings.output_dir
    if not output_dir.is_dir():
        return {"path": str(output_dir), "ok": True, "states": {}, "broken": [], "runs": []}
    return workspace_status(output_dir).to_dict()
