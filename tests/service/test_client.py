"""The Python client and `gepa-cli remote` against a real service: submit from a local file,
follow events across a dropped connection, artifact (409 while running, 404 for unknown),
logs, cancel, delete; --json output and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.client import ServiceClient, ServiceRefusedError, ServiceUnreachableError
from support.cli import run_cli

from .proxy import DroppingProxy
from .support import config_text, make_task, running_service

KEY = "client-test-key-93ab"


def first_checkpoint(events: list[dict[str, Any]]) -> int:
    """How many events up to and with the first checkpoint."""
    return next(i for i, e in enumerate(events, 1) if e["type"] == "checkpoint")


def test_client_submits_follows_a_dropped_stream_and_fetches_results(tmp_path: Path) -> None:
    make_task(tmp_path, "c", "ns-c", latency=0.03, rollouts=60)
    local = tmp_path.parent / f"{tmp_path.name}-laptop.toml"  # not under the allowed root
    local.write_text(config_text("ns-c", rollouts=60))
    env = {"SVC_KEYS": f"laptop={KEY}"}
    with (
        running_service(tmp_path, "--workers", "1", "--keys-env", "SVC_KEYS", env=env) as svc,
        DroppingProxy(svc.port, drop_after_bytes=4000) as proxy,
        ServiceClient(proxy.url, api_key=KEY) as client,
    ):
        queued = client.submit(local, base_dir="c")
        assert queued["status"] == "queued" and queued["client"] == "laptop"
        rid = queued["request_id"]
        events: list[dict[str, Any]] = []
        while_running: ServiceRefusedError | None = None
        for event in client.events(rid):
            if not events:
                with pytest.raises(ServiceRefusedError) as caught:
                    client.artifact(rid)
                while_running = caught.value
            events.append(event)
        done = client.wait(rid, timeout=30)
        artifact = client.artifact(done["run_id"])
        stdout = client.logs(rid, stream="stdout")
        stdout_tail = client.logs(rid, stream="stdout", tail=3)
        with pytest.raises(ServiceRefusedError) as unknown:
            client.artifact("no-such-run")

        # busy long enough to be paused and cancelled mid-run: its own rollouts are slow,
        # and it would need far more of them than it gets to spend before the cancel
        slow = client.submit(text=config_text("ns-c2", rollouts=2000, slow=True), base_dir="c")
        client_runs = client.runs(client="laptop")
        # pause at a checkpoint (the stream ends with the run paused), resume, then cancel
        first_part: list[dict[str, Any]] = []
        for event in client.events(slow["request_id"]):
            first_part.append(event)
            if event["type"] == "checkpoint" and len(first_part) == first_checkpoint(first_part):
                client.pause(slow["request_id"], reason="lunch")
        paused = client.wait(slow["request_id"], timeout=30)
        client.resume(slow["request_id"])
        second_part: list[dict[str, Any]] = []
        for event in client.events(slow["request_id"], after=first_part[-1]["seq"]):
            second_part.append(event)
            if event["type"] == "checkpoint" and len(second_part) == first_checkpoint(second_part):
                client.cancel(slow["request_id"], reason="enough")
        cancelled = client.wait(slow["request_id"], timeout=30)
        deleted = client.delete(slow["run_id"], purge=True)
        with pytest.raises(ServiceRefusedError) as gone:
            client.get(slow["request_id"])

    assert while_running is not None and while_running.status == 409
    assert while_running.code == "conflict"
    assert proxy.drops == 1 and len(proxy.event_requests) >= 2
    assert b"last-event-id:" in proxy.event_requests[1].lower()
    feed = (Path(done["run_dir"]) / "events.jsonl").read_bytes().splitlines()
    assert [e["seq"] for e in events] == list(range(len(feed)))
    assert [orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in events] == feed
    assert done["status"] == "succeeded"
    manifest = orjson.loads((Path(done["run_dir"]) / "manifest.json").read_bytes())
    assert artifact["best_candidate"]["id"] == manifest["best_candidate"]["id"]
    assert artifact["best_candidate"]["texts"] == manifest["best_candidate"]["texts"]
    assert orjson.loads(stdout)["state"] == "finished"
    assert stdout.endswith(stdout_tail) and stdout_tail.count("\n") == 3
    assert unknown.value.status == 404 and unknown.value.code == "not_found"
    assert client_runs["total"] == 2
    assert paused["status"] == "paused" and paused["manifest"]["stopped_by"] == "paused"
    assert second_part and second_part[0]["seq"] > first_part[-1]["seq"]
    assert cancelled["status"] == "cancelled" and cancelled["cancel"]["reason"] == "enough"
    assert cancelled["attempts"] == 2
    assert deleted["purged"] and not Path(cancelled["run_dir"]).exists()
    assert gone.value.status == 404


def test_client_errors_without_a_service() -> None:
    with pytest.raises(ServiceUnreachableError):
        ServiceClient("http://127.0.0.1:9").health()
    with pytest.raises(Exception, match="no service URL"):
        ServiceClient(environ={})


def _json(result: Any) -> Any:
    return orjson.loads(result.stdout)


def test_remote_commands_with_json_and_exit_codes(tmp_path: Path) -> None:
    make_task(tmp_path, "t", "ns-t", rollouts=24)
    env = {"RKEY": KEY}
    with running_service(tmp_path, "--workers", "1", "--api-key-env", "RKEY", env=env) as svc:
        common = {"GEPA_CLI_SERVICE_URL": svc.url, "GEPA_CLI_SERVICE_KEY": KEY}
        config = tmp_path / "t" / "gepa.toml"

        def remote(*args: str, **extra: str) -> Any:
            return run_cli("remote", *args, env={**common, **extra})

        submitted = remote("submit", str(config), "--base-dir", "t", "--wait", "--json")
        assert submitted.exit_code == 0, submitted.output
        run = _json(submitted)
        assert run["status"] == "succeeded" and run["client"] == "default"

        listed = remote("list", "--status", "succeeded", "--json")
        assert listed.exit_code == 0 and _json(listed)["total"] == 1
        shown = remote("show", run["run_id"])
        assert shown.exit_code == 0 and run["request_id"] in shown.stdout
        waited = remote("wait", run["request_id"], "--json")
        assert waited.exit_code == 0 and _json(waited)["status"] == "succeeded"

        out = tmp_path / "best"
        fetched = remote("artifact", run["run_id"], "--write", str(out), "--json")
        assert fetched.exit_code == 0, fetched.output
        texts = _json(fetched)["best_candidate"]["texts"]
        assert {p.name for p in out.iterdir()} == {
            *(f"{m}.txt" for m in texts),
            "manifest.json",
            "frontier.json",
        }
        assert all((out / f"{m}.txt").read_text() == text for m, text in texts.items())

        events = remote("events", run["request_id"])
        seqs = [orjson.loads(line)["seq"] for line in events.stdout.splitlines()]
        assert events.exit_code == 0 and seqs == list(range(len(seqs))) and seqs
        logs = remote("logs", run["request_id"], "--stream", "stdout")
        assert logs.exit_code == 0 and orjson.loads(logs.stdout)["run_id"] == run["run_id"]
        summary = remote("summary", run["request_id"], "--json")
        assert _json(summary)["source"] == "manifest"
        assert remote("queue", "--json").exit_code == 0
        assert remote("health").exit_code == 0

        # refusals: exit 2, the service's error code, and a JSON error body with --json
        missing = remote("artifact", "no-such-run", "--json")
        assert missing.exit_code == 2 and _json(missing)["error"]["code"] == "not_found"
        assert "error [not_found]" in missing.stderr
        again = remote("cancel", run["request_id"])
        assert again.exit_code == 2 and "error [conflict]" in again.stderr
        wrong = remote("list", GEPA_CLI_SERVICE_KEY="wrong")
        assert wrong.exit_code == 2 and "error [unauthorized]" in wrong.stderr
        bad = tmp_path / "bad.toml"
        bad.write_text(config.read_text().replace("minibatch_size", "minibatch_sise"))
        invalid = remote("submit", str(bad), "--base-dir", "t", "--json")
        assert invalid.exit_code == 2 and _json(invalid)["error"]["code"] == "config_error"

        # a held run: waiting on it ends with the run paused: exit 1
        held = _json(remote("submit", str(config), "--base-dir", "t", "--paused", "--json"))
        paused = remote("wait", held["request_id"], "--timeout", "5")
        assert paused.exit_code == 1 and "paused" in paused.stdout
        cancelled = remote("cancel", held["request_id"], "--reason", "no", "--json")
        assert cancelled.exit_code == 0 and _json(cancelled)["status"] == "cancelled"
        deleted = remote("delete", held["request_id"], "--json")
        assert deleted.exit_code == 0 and _json(deleted)["deleted"] is True

    down = run_cli("remote", "list", "--url", svc.url)
    assert down.exit_code == 1 and "error [service_unreachable]" in down.stderr
    nourl = run_cli("remote", "list", env={})
    assert nourl.exit_code == 2 and "no service URL" in nourl.stderr
