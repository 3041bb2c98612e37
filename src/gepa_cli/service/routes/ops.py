"""Operations: health, status, the queue and its workers, metrics, manual claims."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from gepa_cli import __version__
from gepa_cli.service.context import ServiceContext, service_context
from gepa_cli.service.db import DatabaseUnavailableError
from gepa_cli.service.errors import ServiceUnavailableError
from gepa_cli.service.metrics import CONTENT_TYPE
from gepa_cli.service.queue import ACTIVE, now_iso

router = APIRouter(tags=["operations"])
Context = Annotated[ServiceContext, Depends(service_context)]


@router.get("/health")
def health(ctx: Context) -> JSONResponse:
    """ok; degraded when a worker of any process is stale; 503 when the database is gone."""
    body: dict[str, Any] = {"version": __version__, "time": now_iso()}
    try:
        workers = ctx.queue.workers.list()
    except DatabaseUnavailableError as exc:
        body.update(status="unavailable", error=exc.one_line())
        return JSONResponse(body, status_code=503)
    threshold = ctx.settings.stale_after
    stale = [w.to_api(threshold) for w in workers if w.stale(threshold)]
    body.update(
        status="degraded" if stale else "ok",
        shutting_down=ctx.closing(),
        stale_workers=stale,
    )
    return JSONResponse(body)


@router.get("/status")
def status(ctx: Context) -> dict[str, Any]:
    """This process: requests by status, its workers, and the live leases."""
    pool = ctx.pool
    busy = dict(pool.executor.current)
    return {
        "requests": ctx.queue.counts(),
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
            for r in ctx.queue.leases()
        ],
    }


@router.get("/queue")
def queue_view(
    ctx: Context,
    stale_seconds: float | None = Query(
        None, gt=0, description="A worker not seen for longer is stale (default: the service's)."
    ),
) -> dict[str, Any]:
    """The shared queue: pending and active counts, and every process's workers."""
    counts = ctx.queue.counts()
    threshold = stale_seconds or ctx.settings.stale_after
    workers = [w.to_api(threshold) for w in ctx.queue.workers.list()]
    return {
        "pending": counts["queued"],
        "held": counts["paused"],
        "active": sum(counts[s] for s in ACTIVE),
        "counts": counts,
        "stale_after_seconds": threshold,
        "workers_alive": sum(1 for w in workers if not w["stale"]),
        "workers_stale": sum(1 for w in workers if w["stale"]),
        "workers": workers,
    }


@router.get("/metrics", response_class=Response)
def metrics(ctx: Context) -> Response:
    """Prometheus text format."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


@router.post("/worker/run-next")
def run_next(ctx: Context) -> dict[str, Any]:
    """Claim one request now and run it in the background."""
    if ctx.closing():
        raise ServiceUnavailableError("the service is shutting down: it claims nothing more")
    claimed = ctx.pool.run_next()
    return {"claimed": claimed.to_api() if claimed else None}


@router.post("/worker/recover")
def recover(ctx: Context) -> dict[str, Any]:
    """Requeue every request whose lease expired."""
    requeued = ctx.pool.reap()
    ctx.pool.notify()
    return {"requeued": requeued}
