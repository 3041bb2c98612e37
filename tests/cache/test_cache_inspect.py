"""`cache inspect`: counts, run profiles, --verify exit codes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.artifacts.atomic import write_json_atomic
from gepa_cli.runtime.cache import FileResponseCache
from support.cli import run_cli


async def _answer() -> dict[str, Any]:
    return {"score": 1.0}


def record(path: Path, namespace: str, boundary: str, n: int) -> FileResponseCache:
    cache = FileResponseCache(path, namespace, "readwrite")

    async def run() -> None:
        for seed in range(n):
            await cache.through(boundary, {"seed": seed}, _answer)
        await cache.through(boundary, {"seed": 0}, _answer)

    asyncio.run(run())
    return cache


def test_inspect_json_counts_entries_and_sums_profiles(tmp_path: Path) -> None:
    store = tmp_path / "cache"
    first = record(store, "alpha", "container.rollout", 3)
    record(store, "beta", "proposer.openai_chat", 2)
    runs = tmp_path / "runs"
    write_json_atomic(runs / "r1" / "cache_profile.json", first.profile.to_dict())
    write_json_atomic(runs / "r2" / "cache_profile.json", first.profile.to_dict())
    (runs / "r3").mkdir()
    (runs / "r3" / "cache_profile.json").write_text("{half")  # a run still writing

    result = run_cli("cache", "inspect", "--path", str(store), "--runs", str(runs), "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["entries"] == 5 and report["profiles_read"] == 2
    rollout = report["namespaces"]["alpha"]["boundaries"]["container.rollout"]
    assert rollout["entries"] == 3 and rollout["bytes"] > 0
    assert (rollout["hits"], rollout["misses"], rollout["writes"]) == (2, 6, 6)
    assert report["namespaces"]["beta"]["entries"] == 2

    only_beta = run_cli("cache", "inspect", "--path", str(store), "--namespace", "beta", "--json")
    assert list(orjson.loads(only_beta.stdout)["namespaces"]) == ["beta"]


def test_verify_exit_codes_and_missing_path(tmp_path: Path) -> None:
    store = tmp_path / "cache"
    cache = record(store, "alpha", "container.rollout", 2)
    ok = run_cli("cache", "inspect", "--path", str(store), "--verify")
    assert ok.exit_code == 0 and "all entries intact" in ok.output

    damaged = cache.entry_file("container.rollout", {"seed": 1})
    damaged.write_bytes(b"")
    bad = run_cli("cache", "inspect", "--path", str(store), "--verify", "--json")
    assert bad.exit_code == 1
    corrupt = orjson.loads(bad.stdout)["corrupt"]
    assert corrupt == [
        {"file": str(damaged), "reason": f"cache entry {damaged} is corrupt (empty)"}
    ]

    missing = run_cli("cache", "inspect", "--path", str(tmp_path / "nope"))
    assert missing.exit_code == 2
    assert "error [cache_error]: no cache directory at" in missing.output
