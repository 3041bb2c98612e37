"""The response cache (design.md section 5): plain JSON files, one per entry.

Layout: ``<path>/<namespace>/<boundary>/<key[:2]>/<key>.json``, each file holding
``{schema, boundary, namespace, key, request, response}`` as sorted, indented JSON so a
recording diffs in git and DuckDB reads it with ``read_json_auto('<path>/**/*.json')``.
Entries are written atomically (temp file + rename), so concurrent runs writing one
namespace and crashes mid-write can never leave a torn entry under a real name.

A corrupt entry (unparseable, or whose key is not the hash of its request) raises
`CacheError` in every mode instead of being served or silently re-recorded: it means a
recording was edited or damaged, and a user should see that.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from gepa_cli.artifacts.atomic import dumps_pretty, write_bytes_atomic
from gepa_cli.config.models import NAMESPACE, CacheConfig
from gepa_cli.errors import CacheError, CacheMissError
from gepa_cli.runtime.boundary import (
    CacheAction,
    LiveCall,
    always_cacheable,
)

CACHE_SCHEMA = 1
CacheMode = Literal["off", "readwrite", "readonly"]

# Credentials and transport endpoints: they change between machines and runs (or are
# secret) but never change the answer, so they must not reach a key or a stored file.
STRIPPED_KEYS = frozenset(
    {
        "api_key",
        "api_key_env",
        "authorization",
        "base_url",
        "endpoint",
        "headers",
        "host",
        "port",
        "url",
    }
)

BOUNDARY = re.compile(r"^(container\.(program|dataset_rows|rollout)|proposer\.[A-Za-z0-9_-]+)$")
KEY = re.compile(r"^[0-9a-f]{64}$")


def strip_request(value: Any) -> Any:
    """``value`` without credential and endpoint keys, at any depth (case-insensitive)."""
    if isinstance(value, Mapping):
        return {
            key: strip_request(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key.lower() in STRIPPED_KEYS)
        }
    if isinstance(value, (list, tuple)):
        return [strip_request(item) for item in value]
    return value


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def cache_key(boundary: str, request: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of (schema, boundary, stripped request)."""
    try:
        payload = canonical_json([CACHE_SCHEMA, boundary, strip_request(request)])
    except TypeError as error:
        raise CacheError(
            f"request for boundary {boundary} cannot be hashed: {error}",
            hint="requests passed to the cache must be plain JSON data",
        ) from None
    return hashlib.sha256(payload).hexdigest()


def check_boundary(boundary: str) -> None:
    if not BOUNDARY.match(boundary):
        raise CacheError(
            f"unknown cache boundary {boundary!r}",
            hint="use container.program, container.dataset_rows, container.rollout "
            "or proposer.<backend>",
        )


def entry_path(root: Path, namespace: str, boundary: str, key: str) -> Path:
    return root / namespace / boundary / key[:2] / f"{key}.json"


def corrupt(file: Path, reason: str) -> CacheError:
    return CacheError(
        f"cache entry {file} is corrupt ({reason})",
        hint="delete the file and record it again with cache mode 'readwrite' "
        "(`gepa-cli cache inspect --verify` lists every corrupt entry)",
        file=str(file),
    )


def load_entry(file: Path) -> dict[str, Any]:
    """Read and check one entry file; any damage is a `CacheError` naming the file."""
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise CacheError(
            f"cache entry {file} cannot be read: {error.strerror}",
            hint="check the file's permissions",
            file=str(file),
        ) from None
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        reason = "empty" if not raw else "truncated or not JSON"
        raise corrupt(file, reason) from None
    if not isinstance(entry, dict):
        raise corrupt(file, "not a JSON object")
    missing = {"schema", "boundary", "namespace", "key", "request", "response"} - entry.keys()
    if missing:
        raise corrupt(file, f"missing fields: {', '.join(sorted(missing))}")
    if entry["schema"] != CACHE_SCHEMA:
        raise corrupt(file, f"schema {entry['schema']!r}, expected {CACHE_SCHEMA}")
    if not isinstance(entry["request"], dict) or not isinstance(entry["response"], dict):
        raise corrupt(file, "request and response must be JSON objects")
    if file.stem != entry["key"]:
        raise corrupt(file, f"file name does not match its key {entry['key']!r}")
    expected = cache_key(str(entry["boundary"]), entry["request"])
    if expected != entry["key"]:
        raise corrupt(file, "key is not the hash of its request (edited by hand?)")
    return entry


@dataclass
class BoundaryCounts:
    hits: int = 0
    misses: int = 0
    writes: int = 0
    # called live but not stored: mode off, a failed call, or an uncacheable answer
    not_stored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "not_stored": self.not_stored,
        }


@dataclass
class CacheProfile:
    """Per-run counts by boundary; the runner writes ``to_dict()`` to cache_profile.json."""

    namespace: str
    mode: CacheMode
    boundaries: dict[str, BoundaryCounts] = field(default_factory=dict)

    def counts(self, boundary: str) -> BoundaryCounts:
        return self.boundaries.setdefault(boundary, BoundaryCounts())

    def to_dict(self) -> dict[str, Any]:
        totals = BoundaryCounts()
        for counts in self.boundaries.values():
            totals.hits += counts.hits
            totals.misses += counts.misses
            totals.writes += counts.writes
            totals.not_stored += counts.not_stored
        return {
            "schema": CACHE_SCHEMA,
            "namespace": self.namespace,
            "mode": self.mode,
            "boundaries": {
                name: counts.as_dict() for name, counts in sorted(self.boundaries.items())
            },
            "totals": totals.as_dict(),
        }


class FileResponseCache:
    """`ResponseCache` over plain JSON files; safe for concurrent tasks and processes."""

    def __init__(self, path: Path, namespace: str = "default", mode: CacheMode = "readwrite"):
        if not NAMESPACE.match(namespace):
            raise CacheError(
                f"{namespace!r} is not a valid cache namespace",
                hint="use letters, digits, '.', '_' or '-'",
            )
        if mode not in ("off", "readwrite", "readonly"):
            raise CacheError(f"unknown cache mode {mode!r}", hint="use off, readwrite or readonly")
        self.path = Path(path)
        self.namespace = namespace
        self.mode: CacheMode = mode
        self.profile = CacheProfile(namespace=namespace, mode=mode)
        # One lock per key in flight: concurrent identical requests call live once and
        # the others are served the stored answer, exactly as a replay would serve them.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def entry_file(self, boundary: str, request: Mapping[str, Any]) -> Path:
        return entry_path(self.path, self.namespace, boundary, cache_key(boundary, request))

    async def through(
        self,
        boundary: str,
        request: Mapping[str, Any],
        live: LiveCall,
        *,
        cacheable: Callable[[Mapping[str, Any]], bool] = always_cacheable,
    ) -> tuple[dict[str, Any], CacheAction]:
        check_boundary(boundary)
        counts = self.profile.counts(boundary)
        if self.mode == "off":
            response = await live()
            counts.not_stored += 1
            return response, "live"
        key = cache_key(boundary, request)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._through_locked(boundary, request, key, live, cacheable)
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _through_locked(
        self,
        boundary: str,
        request: Mapping[str, Any],
        key: str,
        live: LiveCall,
        cacheable: Callable[[Mapping[str, Any]], bool],
    ) -> tuple[dict[str, Any], CacheAction]:
        counts = self.profile.counts(boundary)
        file = entry_path(self.path, self.namespace, boundary, key)
        entry = await asyncio.to_thread(self._read, file)
        if entry is not None:
            counts.hits += 1
            response: dict[str, Any] = entry["response"]
            return response, "hit"
        counts.misses += 1
        if self.mode == "readonly":
            raise CacheMissError(
                f"readonly cache has no entry for boundary {boundary} in namespace "
                f"{self.namespace} (key {key}) under {self.path}",
                hint="record it with cache mode 'readwrite', or check that the request, "
                "namespace and cache path match the recording",
                boundary=boundary,
                namespace=self.namespace,
                key=key,
            )
        response = await live()
        if not cacheable(response):
            counts.not_stored += 1
            return response, "live"
        payload = {
            "schema": CACHE_SCHEMA,
            "boundary": boundary,
            "namespace": self.namespace,
            "key": key,
            "request": strip_request(request),
            "response": response,
        }
        try:
            data = dumps_pretty(payload)
        except TypeError as error:
            raise CacheError(
                f"response from boundary {boundary} cannot be stored: {error}",
                hint="live calls must return plain JSON data",
            ) from None
        await asyncio.to_thread(write_bytes_atomic, file, data)
        counts.writes += 1
        return response, "write"

    @staticmethod
    def _read(file: Path) -> dict[str, Any] | None:
        if not file.exists():
            return None
        return load_entry(file)


def make_response_cache(config: CacheConfig) -> FileResponseCache:
    """The cache a run uses. Mode off reads and writes nothing but still counts live
    calls, so every run has a profile to check its ledgers against."""
    return FileResponseCache(config.path, config.namespace, config.mode)


def restore_profile(cache: FileResponseCache, saved: Mapping[str, Any] | None) -> None:
    """Continue a resumed run's counts from its checkpoint, so the profile covers the
    whole run and still agrees with the (truncated) ledgers."""
    profile = cache.profile
    if not saved:
        return
    for boundary, counts in dict(saved.get("boundaries", {})).items():
        target = profile.counts(str(boundary))
        target.hits = int(counts.get("hits", 0))
        target.misses = int(counts.get("misses", 0))
        target.writes = int(counts.get("writes", 0))
        target.not_stored = int(counts.get("not_stored", 0))
