"""What every route reads: the service's shared objects, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gepa_cli.service.metrics import ServiceMetrics
from gepa_cli.service.progress import ProgressBoard
from gepa_cli.service.queue import RunQueue
from gepa_cli.service.submit import ServiceSettings
from gepa_cli.service.worker import WorkerPool


@dataclass
class ServiceContext:
    settings: ServiceSettings
    queue: RunQueue
    pool: WorkerPool
    metrics: ServiceMetrics
    board: ProgressBoard

    def closing(self) -> bool:
        """True once the service is shutting down: long streams end so clients reconnect."""
        return self.pool.stopping.is_set()


async def service_context(request: Request) -> ServiceContext:
    """(async: FastAPI would run a plain function in a worker thread, on every request)"""
    context: ServiceContext = request.app.state.service
    return context


def client_of(request: Request) -> str | None:
    """The client name of the key the request came with (None on an open service)."""
    client: str | None = getattr(request.state, "client", None)
    return client
