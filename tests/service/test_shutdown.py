"""SIGTERM under load: the service stops claiming, its runs stop at a safe point and go
back to the queue, the process is gone within the bound, and nothing is lost."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from gepa_cli.artifacts.liveness import pid_alive
from gepa_cli.service.queue import RunQueue

from .support import Service, make_task, read_manifest, running_service, wait_for

GRACE = 5.0
# the grace for running children, uvicorn's few seconds for open connections, and margin
# for a busy machine
BOUND = GRACE + 3 + 7


@pytest.mark.long
def test_sigterm_requeues_running_runs_and_exits_within_the_bound(tmp_path: Path) -> None:
    configs = [make_task(tmp_path, f"t{i}", f"ns{i}", latency=0.03, rollouts=100) for i in range(4)]
    args = ("--workers", "2", "--shutdown-grace-seconds", str(GRACE), "--lease-seconds", "3")
    service = Service(tmp_path, *args).start()
    try:
        with service.client() as client:
            ids = [
                client.post("/runs", json={"config_path": str(c)}).json()["request_id"]
                for c in configs
            ]
            running = [wait_for(client, rid, ("running",), 20) for rid in ids[:2]]
            for run in running:
                deadline = time.monotonic() + 20
                while not (Path(run["run_dir"]) / "checkpoint.json").exists():
                    assert time.monotonic() < deadline, "no checkpoint"
                    time.sleep(0.05)
            children = [client.get(f"/runs/{rid}").json()["status"] for rid in ids]
            assert children == ["running", "running", "queued", "queued"]
        pids = [
            orjson.loads((Path(r["run_dir"]) / "run.lock").read_bytes())["pid"] for r in running
        ]
        asked = time.monotonic()
        service.terminate()
        assert service.proc is not None
        service.proc.wait(timeout=BOUND + 10)
        took = time.monotonic() - asked
    finally:
        service.stop()
    assert took < BOUND, f"the service took {took:.1f}s to stop"
    assert not any(pid_alive(pid) for pid in pids)

    queue = RunQueue.open(tmp_path / "service.sqlite")
    try:
        after = [queue.get(rid) for rid in ids]
        history = {rid: queue.history(rid) for rid in ids}
        workers = queue.workers.list()
    finally:
        queue.close()
    # interrupted runs are queued again, not paused or failed; nothing else was claimed
    assert [r.status for r in after] == ["queued"] * 4
    assert [r.attempts for r in after] == [1, 1, 0, 0]
    assert [[h.outcome for h in history[rid]] for rid in ids] == [["queued"], ["queued"], [], []]
    assert workers == []  # a clean stop takes its workers off the registry
    for run in running:
        manifest = read_manifest(run["run_dir"])
        assert manifest["state"] == "stopped" and manifest["stopped_by"] == "terminated"

    with running_service(tmp_path, "--workers", "2") as restarted, restarted.client() as client:
        done = [wait_for(client, rid, ("succeeded", "failed"), 90) for rid in ids]
    assert [d["status"] for d in done] == ["succeeded"] * 4, done
    for run, expected_attempts in zip(done, (2, 2, 1, 1), strict=True):
        assert run["attempts"] == expected_attempts
        manifest = read_manifest(run["run_dir"])
        assert manifest["state"] == "finished"
        states = [change["state"] for change in manifest["state_history"]]
        # a resumed run continued from its checkpoint: it entered "running" twice
        assert states.count("running") == expected_attempts
        feed = (Path(run["run_dir"]) / "events.jsonl").read_bytes().splitlines()
        assert [orjson.loads(line)["seq"] for line in feed] == list(range(len(feed)))
