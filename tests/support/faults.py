"""An ASGI wrapper that injects faults: 5xx, hangs, dropped connections, malformed bodies.

The fault for a request is a seeded, deterministic function of (seed, request body,
how many times that same body was seen), so a retry of a request can succeed, the
same run injects the same faults whatever the concurrency, and a test can replay
the log to know exactly which faults each request met. Run it behind a real server
(`UvicornThread`) so that drops and hangs are network-level events for the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAULTS = ("http_5xx", "hang", "reset", "malformed")
MALFORMED_BODIES = (
    b"<html>502 bad gateway</html>",  # not JSON
    b'{"rollout_id": "r-x", "status": "completed", "reward_info": {}}',  # no reward
    b'{"status": "completed", "reward_info": {"outcome_reward": NaN}}',  # non-finite
)


class InjectedReset(Exception):
    """Raised after a partial response: the server drops the connection mid-body."""


@dataclass
class FaultRates:
    http_5xx: float = 0.0
    hang: float = 0.0
    reset: float = 0.0
    malformed: float = 0.0

    def pick(self, draw: float) -> str:
        edge = 0.0
        for name in FAULTS:
            edge += getattr(self, name)
            if draw < edge:
                return name
        return "ok"


@dataclass
class FaultInjector:
    """Wrap ``app``; faults only on ``routes`` (by path), everything else passes through."""

    app: ASGIApp
    rates: FaultRates
    seed: int = 0
    routes: tuple[str, ...] = ("/rollout",)
    hang_seconds: float = 5.0
    # request key -> what each arrival of that request met, in order
    log: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @staticmethod
    def key(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()[:16]

    def choose(self, body: bytes) -> tuple[str, random.Random]:
        key = self.key(body)
        nth = len(self.log[key])
        rng = random.Random(f"{self.seed}:{key}:{nth}")
        fault = self.rates.pick(rng.random())
        self.log[key].append(fault)
        return fault, rng

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.routes:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        fault, rng = self.choose(body)
        if fault == "http_5xx":
            status = rng.choice((500, 502, 503))
            await _respond(send, status, b'{"error": {"code": "injected", "message": "5xx"}}')
        elif fault == "hang":
            # hold the request until the client gives up (disconnects) or hang_seconds pass
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_until_disconnect(receive), self.hang_seconds)
        elif fault == "reset":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": b'{"rollout_id": ', "more_body": True}
            )
            raise InjectedReset("connection dropped mid-body")
        elif fault == "malformed":
            await _respond(send, 200, rng.choice(MALFORMED_BODIES))
        else:
            await self.app(scope, _replay(body), send)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more will come; wait to be cancelled
        return {"type": "http.disconnect"}

    return receive


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
