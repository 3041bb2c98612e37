"""The response cache: keys, modes, failures, concurrency, damage, DuckDB."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from gepa_cli.config.models import CacheConfig
from gepa_cli.errors import CacheError, CacheMissError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.cache import (
    FileResponseCache,
    cache_key,
    entry_path,
    load_entry,
    make_response_cache,
)
from gepa_cli.runtime.cache_inspect import inspect_cache

ROLLOUT = "container.rollout"


def rollout_request(seed: int = 1, **extra: Any) -> dict[str, Any]:
    return {"candidate": {"system_prompt": "Be brief."}, "seed": seed, "split": "train", **extra}


class Live:
    """A live call that counts its invocations."""

    def __init__(self, response: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.calls = 0
        self.response = response if response is not None else {"score": 0.5, "output": "x"}
        self.fail = fail

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("HTTP 503")
        return dict(self.response)


def test_key_ignores_credentials_and_endpoints_at_any_depth() -> None:
    plain = rollout_request(policy={"model": "m", "temperature": 0})
    noisy = rollout_request(
        policy={
            "model": "m",
            "temperature": 0,
            "base_url": "http://127.0.0.1:9999/v1",
            "api_key_env": "OPENAI_API_KEY",
            "headers": {"Authorization": "Bearer secret"},
        },
        url="http://localhost:8123",
        Port=8123,
        api_key="sk-secret",
    )
    assert cache_key(ROLLOUT, plain) == cache_key(ROLLOUT, noisy)
    # key order does not matter either
    assert cache_key(ROLLOUT, dict(reversed(list(plain.items())))) == cache_key(ROLLOUT, plain)


def test_key_changes_with_content_and_boundary() -> None:
    base = cache_key(ROLLOUT, rollout_request(1))
    assert base != cache_key(ROLLOUT, rollout_request(2))
    assert base != cache_key(ROLLOUT, rollout_request(1, candidate={"system_prompt": "Be long."}))
    assert base != cache_key("container.program", rollout_request(1))
    assert len(base) == 64


async def test_readwrite_miss_writes_then_hits(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "task-a", "readwrite")
    live = Live()
    request = rollout_request(url="http://127.0.0.1:1234", api_key="sk-secret")
    first = await cache.through(ROLLOUT, request, live)
    second = await cache.through(ROLLOUT, request, live)
    assert first == (live.response, "write")
    assert second == (live.response, "hit")
    assert live.calls == 1
    entry_file = cache.entry_file(ROLLOUT, request)
    text = entry_file.read_text()
    assert "sk-secret" not in text and "1234" not in text
    entry = load_entry(entry_file)
    assert entry["namespace"] == "task-a" and entry["boundary"] == ROLLOUT
    assert cache.profile.to_dict()["boundaries"][ROLLOUT] == {
        "hits": 1,
        "misses": 1,
        "writes": 1,
        "not_stored": 0,
    }
    # another namespace does not see the entry
    other = FileResponseCache(tmp_path, "task-b", "readwrite")
    assert (await other.through(ROLLOUT, request, live))[1] == "write"


async def test_readonly_miss_raises_and_calls_nothing(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "task-a", "readonly")
    live = Live()
    request = rollout_request()
    with pytest.raises(CacheMissError) as caught:
        await cache.through(ROLLOUT, request, live)
    message = str(caught.value)
    assert ROLLOUT in message and "task-a" in message and cache_key(ROLLOUT, request) in message
    assert live.calls == 0
    assert not any(tmp_path.rglob("*.json"))


async def test_readonly_serves_recorded_entries(tmp_path: Path) -> None:
    await FileResponseCache(tmp_path, "ns", "readwrite").through(ROLLOUT, rollout_request(), Live())
    live = Live(fail=True)
    response, action = await FileResponseCache(tmp_path, "ns", "readonly").through(
        ROLLOUT, rollout_request(url="http://elsewhere:1"), live
    )
    assert action == "hit" and response["score"] == 0.5 and live.calls == 0


async def test_failures_are_never_stored(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "ns", "readwrite")
    with pytest.raises(RuntimeError):
        await cache.through(ROLLOUT, rollout_request(1), Live(fail=True))

    def ok(response: Mapping[str, Any]) -> bool:
        return response.get("status") == "ok"

    bad = Live({"status": "error", "detail": "malformed"})
    response, action = await cache.through(ROLLOUT, rollout_request(2), bad, cacheable=ok)
    assert action == "live" and response["status"] == "error"
    assert not any(tmp_path.rglob("*.json"))
    # the failure is retried live next time, not served
    assert (await cache.through(ROLLOUT, rollout_request(2), bad, cacheable=ok))[1] == "live"
    assert bad.calls == 2


async def test_concurrent_identical_requests_call_live_once(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "ns", "readwrite")
    live = Live()
    results = await asyncio.gather(
        *(cache.through(ROLLOUT, rollout_request(seed % 3), live) for seed in range(12))
    )
    assert live.calls == 3
    assert sorted(action for _, action in results).count("write") == 3


async def test_off_mode_and_factory(tmp_path: Path) -> None:
    counted = make_response_cache(CacheConfig(mode="off", path=tmp_path / "never"))
    assert (await counted.through(ROLLOUT, rollout_request(), Live()))[1] == "live"
    assert counted.profile.to_dict()["boundaries"][ROLLOUT]["not_stored"] == 1
    assert not (tmp_path / "never").exists()
    made = make_response_cache(CacheConfig(mode="readwrite", path=tmp_path, namespace="n1"))
    assert isinstance(made, FileResponseCache) and made.namespace == "n1"
    off = FileResponseCache(tmp_path, "ns", "off")
    live = Live()
    assert (await off.through(ROLLOUT, rollout_request(), live))[1] == "live"
    assert (await off.through(ROLLOUT, rollout_request(), live))[1] == "live"
    assert live.calls == 2 and not any(tmp_path.rglob("*.json"))


async def test_unknown_boundary_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="boundary"):
        await FileResponseCache(tmp_path).through("../escape", {}, Live())


async def test_truncated_entry_is_reported_not_served(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "ns", "readwrite")
    await cache.through(ROLLOUT, rollout_request(1), Live())
    await cache.through(ROLLOUT, rollout_request(2), Live())
    damaged = cache.entry_file(ROLLOUT, rollout_request(1))
    damaged.write_bytes(damaged.read_bytes()[:40])
    # a crash leaves a temp file behind: ignored by reads, inspect and DuckDB
    (damaged.parent / f".{damaged.name}.abc.tmp").write_bytes(b"{")
    live = Live()
    for mode in ("readwrite", "readonly"):
        with pytest.raises(CacheError) as caught:
            await FileResponseCache(tmp_path, "ns", mode).through(  # type: ignore[arg-type]
                ROLLOUT, rollout_request(1), live
            )
        assert str(damaged) in str(caught.value) and "delete" in str(caught.value)
    assert live.calls == 0
    report = inspect_cache(tmp_path, verify=True, runs_dir=None)
    assert [c.file for c in report.corrupt] == [str(damaged)]
    assert report.entries == 2 and report.stray_temp_files == 1


def test_hand_edited_response_with_stale_key_is_corrupt(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "ns", "readwrite")
    asyncio.run(cache.through(ROLLOUT, rollout_request(), Live()))
    file = cache.entry_file(ROLLOUT, rollout_request())
    entry = orjson.loads(file.read_bytes())
    entry["request"]["seed"] = 99
    file.write_bytes(orjson.dumps(entry))
    with pytest.raises(CacheError, match="hash of its request"):
        load_entry(file)


def _write_many(path: str, worker: int) -> None:
    async def run() -> None:
        cache = FileResponseCache(Path(path), "shared", "readwrite")
        for seed in range(30):
            # every worker writes the same keys (racing on each) and a few of its own
            await cache.through(ROLLOUT, rollout_request(seed), Live({"seed": seed}))
            await cache.through(ROLLOUT, rollout_request(1000 * worker + seed), Live())

    asyncio.run(run())


def test_two_processes_writing_one_namespace(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(tmp_path), n)) for n in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    report = inspect_cache(tmp_path, verify=True, runs_dir=None)
    assert report.corrupt == []
    assert report.entries == 30 + 60 and report.stray_temp_files == 0
    file = entry_path(tmp_path, "shared", ROLLOUT, cache_key(ROLLOUT, rollout_request(7)))
    assert load_entry(file)["response"] == {"seed": 7}


async def test_duckdb_reads_entries(tmp_path: Path) -> None:
    cache = FileResponseCache(tmp_path, "ns", "readwrite")
    for seed in range(3):
        await cache.through(ROLLOUT, rollout_request(seed), Live({"score": seed / 2}))
    await cache.through("proposer.command", {"prompt": "improve"}, Live({"text": "new"}))
    rows = duckdb.sql(
        f"select boundary, count(*) as n from read_json_auto('{tmp_path}/**/*.json') "
        "group by boundary order by boundary"
    ).fetchall()
    assert rows == [("container.rollout", 3), ("proposer.command", 1)]
