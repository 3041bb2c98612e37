"""The Banking77 container with a fixed latency per rollout, for the pipeline benchmark.

Every ``POST /rollout`` waits ``BENCH_ROLLOUT_LATENCY`` seconds (an asyncio sleep,
so concurrent rollouts overlap as calls to a remote model would) before the offline
policy answers. Data come from ``BANKING77_DATA_DIR``, as for the cookbook container.

In process: ``[container] app = "latency_container:app"`` with this folder on the
path. As a child process: ``python latency_container.py --port N``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cookbooks" / "banking77"))
from banking77_task.container import create_app

LATENCY_ENV = "BENCH_ROLLOUT_LATENCY"
# the kit's rollout routes, sync and async (contract v1: docs/containers.md)
ROLLOUT_ROUTES = ("/rollout", "/rollouts")


class RolloutLatency:
    """ASGI middleware: the rollout route answers ``seconds`` late."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self.seconds > 0
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].rstrip("/") in ROLLOUT_ROUTES
        ):
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


task_app = create_app()
app = task_app.asgi()
app.add_middleware(RolloutLatency, seconds=float(os.environ.get(LATENCY_ENV, "0")))

if __name__ == "__main__":
    task_app.main()
