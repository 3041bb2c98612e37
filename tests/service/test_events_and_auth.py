"""The event stream (order, reconnect with Last-Event-ID), auth, and request checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from .support import config_text, make_task, running_service, wait_for


def _read_sse(response: httpx.Response, limit: int | None = None) -> list[tuple[int, bytes]]:
    """(id, data) of each run event; stops after ``limit`` events or at the end event."""
    got: list[tuple[int, bytes]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            continue
        if fields.get("event") == "end":
            break
        if fields.get("event") == "run_event":
            got.append((int(fields["id"]), fields["data"].encode()))
            if limit is not None and len(got) >= limit:
                break
        fields = {}
    return got


def test_event_stream_in_order_and_resumable(tmp_path: Path) -> None:
    config = make_task(tmp_path, "e", "ns-e", latency=0.02, rollouts=60)
    with running_service(tmp_path, "--workers", "1") as service, service.client() as client:
        request_id = client.post("/runs", json={"config_path": str(config)}).json()["request_id"]
        url = f"/runs/{request_id}/events"
        with client.stream("GET", url) as first:
            assert first.headers["content-type"].startswith("text/event-stream")
            head = _read_sse(first, limit=5)
        last = head[-1][0]
        with client.stream("GET", url, headers={"Last-Event-ID": str(last)}) as second:
            rest = _read_sse(second)
        run = wait_for(client, request_id, ("succeeded", "failed"), 20)
        # a late client gets the whole finished feed and then the end
        with client.stream("GET", url) as late:
            replay = _read_sse(late)
    assert run["status"] == "succeeded", run
    feed = (Path(run["run_dir"]) / "events.jsonl").read_bytes().splitlines()
    received = head + rest
    assert [seq for seq, _ in received] == list(range(len(feed)))
    assert [data for _, data in received] == feed
    assert [orjson.loads(data)["seq"] for _, data in replay] == list(range(len(feed)))


def test_api_key_paths_and_bad_configs(tmp_path: Path) -> None:
    config = make_task(tmp_path, "k", "ns-k")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    env = {"SVC_TEST_KEY": "s3cret-value"}
    args = ("--workers", "0", "--api-key-env", "SVC_TEST_KEY")
    with running_service(tmp_path, *args, env=env) as service:
        with service.client() as anonymous:
            assert anonymous.get("/health").status_code == 200
            for method, path in (("GET", "/status"), ("GET", "/runs"), ("POST", "/runs")):
                denied = anonymous.request(method, path, json={})
                assert denied.status_code == 401
                assert denied.json()["error"]["code"] == "unauthorized"
            wrong = anonymous.get("/runs", headers={"X-API-Key": "nope"})
            assert wrong.status_code == 401
        with service.client(authorization="Bearer s3cret-value") as bearer:
            assert bearer.get("/status").status_code == 200
            assert bearer.get("/openapi.json").json()["paths"]["/runs"]
        with service.client(**{"x-api-key": "s3cret-value"}) as client:
            escape = f"{tmp_path.name}/../../{outside.name}/gepa.toml"
            for path in ("k/../../x.toml", escape, str(outside / "gepa.toml")):
                answer = client.post("/runs", json={"config_path": path})
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"]["code"] == "path_not_allowed"

            def post(body: dict[str, Any]) -> httpx.Response:
                return client.post("/runs", json=body)

            bad = config.with_name("bad.toml")
            bad.write_text(config.read_text().replace("minibatch_size", "minibatch_sise"))
            answer = post({"config_path": str(bad)})
            assert answer.status_code == 422
            error = answer.json()["error"]
            assert error["code"] == "config_error" and "minibatch_sise" in error["message"]
            assert post({"config_toml": "[run\n"}).status_code == 422
            assert post({}).status_code == 400
            assert client.get("/runs").json()["total"] == 0

            toml = config_text("ns-toml")  # relative paths mean base_dir "k"
            ok = post({"config_toml": toml, "base_dir": "k", "priority": 5})
            assert ok.status_code == 201, ok.text
            assert ok.json()["status"] == "queued"
            assert client.get("/runs/nope").status_code == 404
            assert client.delete(f"/runs/{ok.json()['request_id']}").status_code == 409
            claimed = client.post("/worker/run-next").json()["claimed"]
            assert claimed["request_id"] == ok.json()["request_id"]
            done = wait_for(client, claimed["request_id"], ("succeeded", "failed"), 20)
            assert done["status"] == "succeeded", done
            assert Path(done["run_dir"]).parent == tmp_path / "runs"
            assert (tmp_path / "k" / "cache").is_dir()
