"""Cancel, pause and resume of running requests, through the real service."""

from __future__ import annotations

import time
from pathlib import Path

from .support import make_task, read_manifest, running_service, wait_for


def _wait_started(run_dir: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = run_dir / "events.jsonl"
        if events.exists() and events.read_bytes().count(b"\n") >= 3:
            return
        time.sleep(0.05)
    raise AssertionError("the run did not start")


def test_cancel_pause_and_resume(tmp_path: Path) -> None:
    cancel_cfg = make_task(tmp_path, "c", "ns-c", latency=0.03, rollouts=200)
    pause_cfg = make_task(tmp_path, "p", "ns-p", latency=0.03, rollouts=60)
    with running_service(tmp_path, "--workers", "2") as service, service.client() as client:
        cancel_id = client.post("/runs", json={"config_path": str(cancel_cfg)}).json()["request_id"]
        pause_id = client.post("/runs", json={"config_path": str(pause_cfg)}).json()["request_id"]
        cancel_run = wait_for(client, cancel_id, ("running",), 10)
        pause_run = wait_for(client, pause_id, ("running",), 10)
        _wait_started(Path(cancel_run["run_dir"]))
        _wait_started(Path(pause_run["run_dir"]))

        asked = time.monotonic()
        answer = client.post(f"/runs/{cancel_id}/cancel", json={"reason": "not needed"})
        assert answer.status_code == 200 and answer.json()["control"] == "cancel"
        assert client.post(f"/runs/{pause_id}/pause").status_code == 200
        cancelled = wait_for(client, cancel_id, ("cancelled", "succeeded", "failed"), 5)
        assert time.monotonic() - asked < 5
        assert cancelled["status"] == "cancelled", cancelled
        assert cancelled["cancel"]["reason"] == "not needed"
        assert read_manifest(cancelled["run_dir"])["stopped_by"] == "cancelled"
        assert cancelled["manifest"]["stopped_by"] == "cancelled"

        paused = wait_for(client, pause_id, ("paused", "succeeded", "failed"), 10)
        assert paused["status"] == "paused", paused
        assert read_manifest(paused["run_dir"])["stopped_by"] == "paused"
        assert client.delete(f"/runs/{pause_id}").status_code == 409
        assert client.post(f"/runs/{cancel_id}/resume").status_code == 409

        assert client.post(f"/runs/{pause_id}/resume").json()["status"] == "queued"
        done = wait_for(client, pause_id, ("succeeded", "failed"), 20)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert read_manifest(done["run_dir"])["state"] == "finished"

        deleted = client.delete(f"/runs/{cancel_id}")
        assert deleted.status_code == 200
        assert client.get(f"/runs/{cancel_id}").status_code == 404


def test_held_request_starts_only_when_resumed(tmp_path: Path) -> None:
    config = make_task(tmp_path, "h", "ns-h", rollouts=20)
    with running_service(tmp_path, "--workers", "1") as service, service.client() as client:
        body = {"config_path": str(config), "auto_start": False}
        held = client.post("/runs", json=body).json()
        assert held["status"] == "paused"
        time.sleep(0.5)
        assert client.get(f"/runs/{held['request_id']}").json()["status"] == "paused"
        queued = client.post("/runs", json={"config_path": str(config)}).json()
        assert client.post(f"/runs/{queued['request_id']}/cancel").json()["status"] in (
            "cancelled",
            "leased",
            "running",
        )
        client.post(f"/runs/{held['request_id']}/resume")
        done = wait_for(client, held["request_id"], ("succeeded", "failed"), 20)
        assert done["status"] == "succeeded", done
