"""How the container client sends one request: aiohttp to a URL (a container it started,
one served in process on a loopback port, or one running elsewhere), httpx to a given
transport. Both hand back an `Answer` and raise httpx's transport errors, so retries
and the fault names recorded with each rollout do not depend on which one carried the
call.

aiohttp carries real URLs because the rollout path is the driver's hottest: at 32
rollouts in flight httpcore's pool scans every pooled connection on each request and
release (about 1.2 ms of CPU per rollout even split into small pools), where aiohttp's
costs about 0.1 ms (bench/rollout_throughput.py). httpx stays for `transport=`, which
the tests use to put a mock or faulty transport in the client's place.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

# idle connections are dropped before a server's usual 5 s keep-alive ends, so a pooled
# connection is rarely one the server is closing
KEEPALIVE_SECONDS = 2.0


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (HTTPS_PROXY, NO_PROXY, ...), as httpx
    would use it; looked up once, where aiohttp's ``trust_env`` would look it up (and
    .netrc) in a worker thread on every call."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


@dataclass(frozen=True)
class Answer:
    status_code: int
    content: bytes
    headers: Mapping[str, str]
    reason_phrase: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class Sender(Protocol):
    async def send(
        self, method: str, path: str, content: bytes | None, headers: Mapping[str, str] | None
    ) -> Answer: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
        )

    async def send(
        self, method: str, path: str, content: bytes | None, headers: Mapping[str, str] | None
    ) -> Answer:
        response = await self._client.request(method, path, content=content, headers=headers)
        return Answer(
            response.status_code, response.content, response.headers, response.reason_phrase
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpSender:
    def __init__(
        self, base_url: str, headers: Mapping[str, str], timeout_seconds: float, limit: int
    ) -> None:
        self.base_url = base_url
        self._headers = dict(headers)
        # per operation, as httpx's timeout is: a slow but steady answer is fine
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeout_seconds,
            sock_connect=timeout_seconds,
            sock_read=timeout_seconds,
        )
        self._limit = limit
        self._proxy = env_proxy(base_url)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # made on first use: a session belongs to the event loop that runs it
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(
                    limit=self._limit, keepalive_timeout=KEEPALIVE_SECONDS
                ),
            )
        return self._session

    async def send(
        self, method: str, path: str, content: bytes | None, headers: Mapping[str, str] | None
    ) -> Answer:
        url = self.base_url + path
        try:
            async with self._client().request(
                method, url, data=content, headers=headers, proxy=self._proxy
            ) as r:
                body = await r.read()
                return Answer(r.status, body, r.headers, r.reason or "")
        except asyncio.TimeoutError:
            raise
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        except (aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            raise httpx.ReadError(str(exc)) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.InvalidURL(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
