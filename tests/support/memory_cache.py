"""An in-memory `ResponseCache` with the three modes, for tests of cache-routed callers."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gepa_cli.errors import CacheMissError
from gepa_cli.runtime.boundary import CacheAction, LiveCall, always_cacheable


class MemoryCache:
    def __init__(self, mode: str = "readwrite", namespace: str = "test") -> None:
        self.mode = mode
        self.namespace = namespace
        self.entries: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, Mapping[str, Any]] = {}
        self.actions: Counter[tuple[str, str]] = Counter()
        self.calls: list[tuple[str, dict[str, Any]]] = []  # every request, in order

    @staticmethod
    def key(boundary: str, request: Mapping[str, Any]) -> str:
        material = orjson.dumps([1, boundary, request], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(material).hexdigest()

    async def through(
        self,
        boundary: str,
        request: Mapping[str, Any],
        live: LiveCall,
        *,
        cacheable: Callable[[Mapping[str, Any]], bool] = always_cacheable,
    ) -> tuple[dict[str, Any], CacheAction]:
        self.calls.append((boundary, dict(request)))
        key = self.key(boundary, request)
        if self.mode != "off" and key in self.entries:
            self.actions[(boundary, "hit")] += 1
            return orjson.loads(orjson.dumps(self.entries[key])), "hit"
        if self.mode == "readonly":
            raise CacheMissError(
                f"no cache entry for {boundary} in namespace {self.namespace} (key {key[:12]})"
            )
        response = await live()
        if self.mode == "readwrite" and cacheable(response):
            self.entries[key] = orjson.loads(orjson.dumps(response))
            self.requests[key] = request
            self.actions[(boundary, "write")] += 1
            return response, "write"
        self.actions[(boundary, "live")] += 1
        return response, "live"
