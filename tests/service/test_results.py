"""Results over HTTP (live progress, summary, logs, artifact, candidates, workspace, queue,
health, metrics) and identity (keys by client, runs recording who submitted them)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from .support import make_task, read_manifest, running_service, wait_for

ALICE, CI = "alice-key-4f9a2c", "ci-key-77b1e0"


def _keys_file(root: Path) -> Path:
    keys = root / "keys.toml"
    digest = hashlib.sha256(CI.encode()).hexdigest()
    keys.write_text(
        f'[clients.alice]\nkey_env = "ALICE_KEY"\n\n[clients.ci]\nkey_sha256 = "{digest}"\n'
    )
    return keys


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_results_of_a_run_while_it_runs_and_after(tmp_path: Path) -> None:
    config = make_task(tmp_path, "r", "ns-r", latency=0.03, rollouts=60)
    args = ("--workers", "1", "--keys-file", str(_keys_file(tmp_path)))
    with (
        running_service(tmp_path, *args, env={"ALICE_KEY": ALICE}) as service,
        service.client(**{"x-api-key": ALICE}) as alice,
        service.client(authorization=f"Bearer {CI}") as ci,
    ):
        held = ci.post("/runs", json={"config_path": str(config), "auto_start": False}).json()
        assert held["client"] == "ci"
        for route in ("artifact", "summary", "candidates", "logs"):
            answer = alice.get(f"/runs/{held['request_id']}/{route}")
            assert answer.status_code == 404, (route, answer.text)
        created = alice.post("/runs", json={"config_path": str(config)}).json()
        rid = created["request_id"]
        assert created["client"] == "alice"

        # while it runs: live progress, a summary from the feed, and no artifact yet
        deadline, live = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            run = alice.get(f"/runs/{rid}").json()
            progress = run.get("progress")
            if run["status"] == "running" and progress and progress["best_val_mean"] is not None:
                live = run
                break
            time.sleep(0.05)
        assert live is not None, "no live progress seen"
        progress = live["progress"]
        assert progress["rollouts"]["total"] > 0 and progress["max_total_rollouts"] == 60
        assert progress["candidates"] >= 1 and progress["last_event"]["seq"] >= 0
        assert progress["best_candidate_id"].startswith("c")
        assert progress["cost_usd"] == 0.0 and progress["spent_usd"] in (None, 0.0)
        conflict = alice.get(f"/runs/{rid}/artifact")
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
        during = alice.get(f"/runs/{rid}/summary").json()
        assert during["source"] == "feed" and during["events"] >= 1
        # following the run's stdout ends when the run does, with what it printed last
        followed = alice.get(
            f"/runs/{rid}/logs", params={"stream": "stdout", "follow": True}, timeout=60
        )
        assert orjson.loads(followed.text)["state"] == "finished"

        done = wait_for(alice, rid, ("succeeded", "failed"), 60)
        assert done["status"] == "succeeded", done
        assert "progress" not in done

        summary = alice.get(f"/runs/{rid}/summary").json()
        manifest = read_manifest(done["run_dir"])
        assert summary["source"] == "manifest" and summary["state"] == "finished"
        assert summary["best_candidate_id"] == manifest["best_candidate"]["id"]
        assert summary["rollouts"] == manifest["budget"]["rollouts"]

        artifact = alice.get(f"/runs/{rid}/artifact").json()
        best = artifact["best_candidate"]
        rows = [
            orjson.loads(line)
            for line in (Path(done["run_dir"]) / "candidates.jsonl").read_bytes().splitlines()
        ]
        assert best["id"] == manifest["best_candidate"]["id"]
        assert best["texts"] == next(r["texts"] for r in rows if r["candidate_id"] == best["id"])
        assert artifact["manifest"] == manifest
        frontier = orjson.loads((Path(done["run_dir"]) / "frontier.json").read_bytes())
        assert artifact["frontier"] == frontier

        candidates = alice.get(f"/runs/{rid}/candidates", params={"limit": 2}).json()
        assert candidates["total"] == len(rows) and candidates["candidates"] == rows[:2]

        stdout = alice.get(f"/runs/{rid}/logs", params={"stream": "stdout"}).text
        assert orjson.loads(stdout)["run_id"] == done["run_id"]  # `gepa run --json`
        whole = alice.get(f"/runs/{rid}/logs").text
        last2 = alice.get(f"/runs/{rid}/logs", params={"tail": 2}).text
        assert whole.endswith(last2) and last2.count("\n") <= 2
        followed = alice.get(f"/runs/{rid}/logs", params={"follow": True, "tail": 0}).text
        assert followed == ""  # the run is over: nothing more comes

        workspace = alice.get("/workspace").json()
        assert [r["run_id"] for r in workspace["runs"]] == [done["run_id"]]
        assert workspace["runs"][0]["state"] == "finished" and workspace["ok"]

        queue = alice.get("/queue").json()
        assert queue["pending"] == 0 and queue["held"] == 1 and queue["active"] == 0
        assert queue["workers_alive"] == 1 and queue["workers_stale"] == 0
        health = alice.get("/health").json()
        assert health["status"] == "ok" and health["stale_workers"] == []

        mine = alice.get("/runs", params={"client": "alice"}).json()
        assert [r["request_id"] for r in mine["runs"]] == [rid] and mine["total"] == 1
        theirs = alice.get("/runs", params={"client": "ci", "status": "paused"}).json()
        assert [r["request_id"] for r in theirs["runs"]] == [held["request_id"]]
        cancelled = ci.post(f"/runs/{held['request_id']}/cancel", json={"reason": "x"}).json()
        assert cancelled["cancel"]["by"] == "ci"

        metrics = _metrics(alice.get("/metrics").text)
    rollouts = manifest["budget"]["rollouts"]["total"]
    assert metrics[("gepa_service_rollouts_total", ())] == rollouts
    assert metrics[("gepa_service_proposals_total", ())] == manifest["budget"]["proposals"]
    assert metrics[("gepa_service_runs_finished_total", (("outcome", "succeeded"),))] == 1
    assert metrics[("gepa_service_queue_requests", (("status", "cancelled"),))] == 1
    assert metrics[("gepa_service_queue_requests", (("status", "succeeded"),))] == 1
    assert metrics[("gepa_service_workers", (("state", "alive"),))] == 1
    assert metrics[("gepa_service_lease_expiries_total", ())] == 0
    summary_route = (("method", "GET"), ("route", "/runs/{request_id}/summary"), ("status", "200"))
    assert metrics[("gepa_service_http_request_duration_seconds_count", summary_route)] == 2
    # keys are named, never logged
    log = service.log.read_text()
    assert "alice, ci" in log and ALICE not in log and CI not in log
