"""Several service processes on one PostgreSQL queue, as on several hosts: each with its
own working directory, sharing only the database and the run storage (runs and data
dir). 60 runs over 3 namespaces; one process is SIGKILLed midway."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from gepa_cli.service.queue import RunQueue
from support.task_dir import make_task_dir

from .support import Service, served_containers

RUNS, NAMESPACES, PROCESSES = 60, 3, 3
LEASE = 2.0
VICTIM = 1


def _task(shared: Path, index: int, container_url: str) -> Path:
    """A tiny run: 3 validation and 2 heldout examples, 16 rollouts, no cache (so every
    run does its own rollouts, 30 ms each, on its namespace's container)."""
    return make_task_dir(
        shared / f"task{index}",
        container={"app": None, "url": container_url},
        dataset={"val_seeds": "100:103", "heldout_seeds": "0:2"},
        gepa={"max_total_rollouts": 16},
        cache={"mode": "off", "namespace": f"ns{index}"},
    )


def _feed(run_dir: str) -> list[dict]:
    return [
        orjson.loads(line) for line in (Path(run_dir) / "events.jsonl").read_bytes().splitlines()
    ]


@pytest.fixture
def container_urls() -> Iterator[list[str]]:
    with served_containers(NAMESPACES, latency=0.03) as urls:
        yield urls


@pytest.mark.long
def test_three_processes_share_one_postgres_queue_and_survive_a_kill(
    tmp_path: Path, postgres_url: str, container_urls: list[str]
) -> None:
    shared = tmp_path / "shared"
    configs = [_task(shared, index, url) for index, url in enumerate(container_urls)]
    data_dir = shared / "service-data"
    services = [
        Service(
            shared,
            "--workers", "2",
            "--worker-id", f"svc{index}",
            "--lease-seconds", str(LEASE),
            "--poll-seconds", "0.1",
            "--data-dir", str(data_dir),
            db=postgres_url,
            cwd=tmp_path / f"work{index}",
            # the victim's runs think for a while, so it is killed mid-run, not just
            # as a run finishes
            env={"GEPA_TEST_PROPOSER_DELAY": "0.5"} if index == VICTIM else None,
        )
        for index in range(PROCESSES)
    ]  # fmt: skip
    victim = services[VICTIM]
    queue = RunQueue.open(postgres_url)
    try:
        for service in services:
            service.start()
        clients = [service.client() for service in services]

        def post(index: int) -> str:
            answer = clients[index % PROCESSES].post(
                "/runs", json={"config_path": str(configs[index % NAMESPACES])}
            )
            assert answer.status_code == 201, answer.text
            return str(answer.json()["request_id"])

        with ThreadPoolExecutor(6) as pool:
            ids = list(pool.map(post, range(RUNS)))

        # kill a process while it runs a run that has a checkpoint (watching from the
        # start: on a fast machine the victim's checkpointed windows are short)
        target = None
        deadline = time.monotonic() + 240
        while target is None and time.monotonic() < deadline:
            for lease in queue.leases():
                run_dir = Path(lease.run_dir)
                if (
                    lease.status == "running"
                    and str(lease.lease_owner).startswith(f"svc{VICTIM}/")
                    and (run_dir / "checkpoint.json").exists()
                    and not (run_dir / "manifest.json").exists()
                ):
                    target = lease
                    break
            time.sleep(0.02)
        assert target is not None, "no checkpointed run of the victim to kill"
        victim.kill()
        held = [r for r in queue.leases() if str(r.lease_owner).startswith(f"svc{VICTIM}/")]
        assert target.request_id in {r.request_id for r in held}

        survivor = clients[0]
        stale_seen = False
        while time.monotonic() < deadline:
            health = survivor.get("/health").json()
            if health["status"] == "degraded":
                stale = {worker["worker_id"].split("/")[0] for worker in health["stale_workers"]}
                stale_seen = stale_seen or stale == {f"svc{VICTIM}"}
            counts = queue.counts()
            if counts["succeeded"] + counts["failed"] + counts["cancelled"] == RUNS:
                break
            time.sleep(0.2)
        final = [queue.get(rid) for rid in ids]
        history = queue.history()
        queue_view = survivor.get("/queue").json()
        for client in clients:
            client.close()
    finally:
        for service in services:
            service.stop()
        queue.close()

    assert Counter(r.status for r in final) == {"succeeded": RUNS}, [
        (r.run_id, r.status, r.error) for r in final if r.status != "succeeded"
    ]
    # every run succeeded exactly once: one succeeded lease, one run.finished, one feed
    outcomes = Counter((lease.request_id, lease.outcome) for lease in history)
    assert all(outcomes[(rid, "succeeded")] == 1 for rid in ids)
    for request in final:
        feed = _feed(request.run_dir)
        assert [event["seq"] for event in feed] == list(range(len(feed)))
        assert [event["type"] for event in feed].count("run.finished") == 1
        assert Path(request.run_dir).parent == shared / "runs"

    # no namespace ever had two leases at once (the recorded history, database clock)
    by_namespace: dict[str, list[tuple[float, float]]] = {}
    for lease in history:
        assert lease.ended_at is not None, lease
        by_namespace.setdefault(lease.namespace_key, []).append((lease.claimed_at, lease.ended_at))
    assert len(by_namespace) == NAMESPACES
    for namespace, spans in by_namespace.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert end <= start, f"two runs at once on {namespace}"

    # the killed process's runs expired, were requeued, and were finished by the others
    for request in (r for r in final if r.request_id in {h.request_id for h in held}):
        leases = [lease for lease in history if lease.request_id == request.request_id]
        assert [lease.outcome for lease in leases] == ["expired", "succeeded"]
        assert leases[0].owner.startswith(f"svc{VICTIM}/") and not leases[1].owner.startswith(
            f"svc{VICTIM}/"
        )
        assert request.attempts == 2
    manifest = orjson.loads((Path(target.run_dir) / "manifest.json").read_bytes())
    states = [change["state"] for change in manifest["state_history"]]
    assert states.count("running") == 2 and states[-1] == "finished"  # resumed, not restarted
    feed = _feed(target.run_dir)
    assert [e["type"] for e in feed].count("run.started") == 1

    assert stale_seen, "the killed process's workers were never reported stale"
    assert queue_view["workers_stale"] == 2 and queue_view["workers_alive"] == 4
    # each process kept to its own working directory; runs and logs went to shared storage
    for index, service in enumerate(services):
        assert service.log.parent == tmp_path / f"work{index}"
        assert {p.name for p in (tmp_path / f"work{index}").iterdir()} == {service.log.name}
    assert len(list((data_dir / "logs").glob("*.out"))) == RUNS
