"""An ASGI wrapper that rewrites one route's JSON answer, served behind a real server.

The transport-level `PatchedTransport` of the contract tests works only for an
in-process client; this one lets a test point `gepa-cli container check --url` at a
container that answers wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

Patch = Callable[[Any], Any] | bytes


class PatchedApp:
    def __init__(self, app: Any, patches: Mapping[str, Patch]) -> None:
        self.app = app
        self.patches = dict(patches)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        patch = None
        if scope["type"] == "http":
            patch = self.patches.get(f"{scope['method']} {scope['path']}")
        if patch is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            raw = b"".join(chunks)
            content = patch if isinstance(patch, bytes) else orjson.dumps(patch(orjson.loads(raw)))
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(content)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": content})

        await self.app(scope, receive, rewrite)
