"""Many runs through a real service: each succeeds once; a namespace never runs twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from .support import make_task, read_manifest, running_service, served_containers

TASKS = {"a": "ns1", "b": "ns1", "c": "ns2", "d": "ns2"}  # two dirs share each namespace


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def container_urls() -> Iterator[list[str]]:
    with served_containers(len(TASKS), latency=0.0) as urls:
        yield urls


@pytest.mark.long
def test_twenty_runs_succeed_once_without_namespace_overlap(
    tmp_path: Path, container_urls: list[str]
) -> None:
    configs = []
    for (name, namespace), url in zip(TASKS.items(), container_urls, strict=True):
        # a container per directory: only the namespace keeps two runs apart
        config = make_task(tmp_path, name, namespace, rollouts=24, container_url=url)
        # both directories of a namespace write one shared cache
        config.write_text(config.read_text().replace('path = "cache"', 'path = "../cache"'))
        configs.append((config, namespace))
    with running_service(tmp_path, "--workers", "2") as service, service.client() as client:

        def post(index: int) -> tuple[str, str]:
            config, namespace = configs[index % len(configs)]
            answer = client.post("/runs", json={"config_path": str(config)})
            assert answer.status_code == 201, answer.text
            return answer.json()["request_id"], namespace

        with ThreadPoolExecutor(8) as pool:
            submitted = list(pool.map(post, range(20)))
        deadline = time.monotonic() + 180  # a bound on waiting, not a speed claim
        while time.monotonic() < deadline:
            counts = client.get("/status").json()["requests"]
            if counts["succeeded"] + counts["failed"] == 20:
                break
            time.sleep(0.2)
        runs = {
            r["request_id"]: r for r in client.get("/runs", params={"limit": 100}).json()["runs"]
        }
        page = client.get("/runs", params={"status": "succeeded", "limit": 5, "offset": 5}).json()

    assert len(runs) == 20 and page["total"] == 20 and len(page["runs"]) == 5
    assert {r["status"] for r in runs.values()} == {"succeeded"}, [
        r.get("error") for r in runs.values()
    ]
    assert all(r["attempts"] == 1 for r in runs.values())
    assert len({r["run_id"] for r in runs.values()}) == 20
    for run in runs.values():
        manifest = read_manifest(run["run_dir"])
        assert manifest["state"] == "finished"
        assert run["manifest"]["run_id"] == run["run_id"] == manifest["run_id"]
    by_namespace: dict[str, list[tuple[float, float]]] = {}
    for request_id, namespace in submitted:
        run = runs[request_id]
        manifest = read_manifest(run["run_dir"])
        # the queue's lease window and the run's own clock must both be disjoint
        by_namespace.setdefault(namespace, []).append(
            (_at(run["claimed_at"]), _at(run["finished_at"]))
        )
        by_namespace.setdefault(namespace + "/run", []).append(
            (_at(manifest["started_at"]), _at(manifest["finished_at"]))
        )
    for namespace, spans in by_namespace.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert end <= start, f"two runs overlap on {namespace}"
