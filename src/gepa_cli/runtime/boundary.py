"""The one door every call across a boundary goes through: the response cache.

Boundaries are ``container.program``, ``container.dataset_rows``, ``container.rollout``
and ``proposer.<backend>``. The container client and the proposers call
``cache.through(boundary, request, live)``; the cache decides whether ``live`` runs.
``request`` is the logical request: the caller leaves out credentials, and the cache
drops transport endpoints (URLs, ports) before hashing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

# hit: served from the cache; write: called live and stored; live: called live, not stored
# (cache off, or the answer was a failure, which is never cached)
CacheAction = Literal["hit", "write", "live"]

LiveCall = Callable[[], Awaitable[dict[str, Any]]]


def always_cacheable(_response: Mapping[str, Any]) -> bool:
    return True


class ResponseCache(Protocol):
    async def through(
        self,
        boundary: str,
        request: Mapping[str, Any],
        live: LiveCall,
        *,
        cacheable: Callable[[Mapping[str, Any]], bool] = always_cacheable,
    ) -> tuple[dict[str, Any], CacheAction]:
        """Serve ``request`` from the cache or call ``live``.

        Raises `CacheMissError` (naming boundary, namespace and key) in readonly mode
        when there is no entry; exceptions from ``live`` propagate and nothing is stored.
        """
        ...


class NoCache:
    """Cache mode ``off``: every call goes live and nothing is stored."""

    async def through(
        self,
        boundary: str,
        request: Mapping[str, Any],
        live: LiveCall,
        *,
        cacheable: Callable[[Mapping[str, Any]], bool] = always_cacheable,
    ) -> tuple[dict[str, Any], CacheAction]:
        return await live(), "live"
