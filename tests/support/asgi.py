"""A container client that talks to an ASGI app in this process, without a socket."""

from __future__ import annotations

from typing import Any

import httpx

from gepa_cli.runtime.container import ContainerClient


def asgi_client(
    app: Any, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
) -> ContainerClient:
    options: dict[str, Any] = {"timeout_seconds": 2.0, "retries": 2, "backoff_seconds": 0.001}
    options.update(kwargs)
    return ContainerClient(
        "http://container.test", transport=transport or httpx.ASGITransport(app=app), **options
    )
