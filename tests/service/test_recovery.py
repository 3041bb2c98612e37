"""A service killed with SIGKILL mid-run: its child dies too, the lease expires, and a
restarted service resumes the run from its checkpoint to the end."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from gepa_cli.artifacts.liveness import pid_alive, read_lock

from .support import Service, make_task, read_manifest, running_service, wait_for


def test_killed_service_leaves_no_orphan_and_the_run_completes(tmp_path: Path) -> None:
    config = make_task(tmp_path, "slow", "ns-slow", latency=0.03, rollouts=90)
    args = ("--workers", "1", "--lease-seconds", "2")
    service = Service(tmp_path, *args).start()
    try:
        with service.client() as client:
            request_id = client.post("/runs", json={"config_path": str(config)}).json()[
                "request_id"
            ]
            run = wait_for(client, request_id, ("running",), 10)
        run_dir = Path(run["run_dir"])
        deadline = time.monotonic() + 15
        while not (run_dir / "checkpoint.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (run_dir / "checkpoint.json").exists()
        lock = read_lock(run_dir)
        assert lock is not None
        service.kill()
    finally:
        service.stop()
    deadline = time.monotonic() + 3
    while pid_alive(lock.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(lock.pid), "the run outlived the killed service"
    assert not (run_dir / "manifest.json").exists()

    restarted = Service(tmp_path, *args).start()
    try:
        with restarted.client() as client:
            before = client.get(f"/runs/{request_id}").json()
            assert before["status"] in ("running", "queued", "leased")
            done = wait_for(client, request_id, ("succeeded", "failed"), 30)
    finally:
        restarted.stop()
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    manifest = read_manifest(run_dir)
    assert manifest["state"] == "finished"
    seqs = [
        orjson.loads(line)["seq"] for line in (run_dir / "events.jsonl").read_bytes().splitlines()
    ]
    assert seqs == list(range(len(seqs)))


def test_recover_route_requeues_only_expired_leases(tmp_path: Path) -> None:
    config = make_task(tmp_path, "t", "ns-t")
    with running_service(tmp_path, "--workers", "0") as service, service.client() as client:
        request_id = client.post("/runs", json={"config_path": str(config)}).json()["request_id"]
        assert client.post("/worker/recover").json() == {"requeued": []}
        claimed = client.post("/worker/run-next").json()["claimed"]
        assert claimed["request_id"] == request_id and claimed["status"] == "leased"
        assert client.post("/worker/run-next").json() == {"claimed": None}
        # a live lease is not expired: recover leaves it with its worker
        assert client.post("/worker/recover").json() == {"requeued": []}
        leases = client.get("/status").json()["leases"]
        assert [lease["request_id"] for lease in leases] == [request_id]
        done = wait_for(client, request_id, ("succeeded", "failed"), 20)
        assert done["status"] == "succeeded", done
