"""SIGKILL the service in the middle of traffic, start it again: nothing acknowledged is
lost, earlier rollouts can still be rewarded, and the run directory replays clean."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import openai

from gepa_cli.artifacts import layout, read_jsonl
from gepa_cli.artifacts.replay import check_artifacts, replay_events
from gepa_cli.workspace import workspace_status
from online.support import PROPOSER, UPSTREAM_KEY, UPSTREAM_KEY_ENV, chat, session_toml
from service.support import Service
from support.chat_upstream import ThreadServer

KEYS = {"CTRL_KEY": "restart-control", "PROXY_KEY": "restart-proxy", UPSTREAM_KEY_ENV: UPSTREAM_KEY}


def _service(root: Path) -> Service:
    args = ("--workers", "0", "--api-key-env", "CTRL_KEY", "--proxy-key-env", "PROXY_KEY")
    return Service(root, *args, env=KEYS).start()


def _clients(service: Service) -> tuple[httpx.Client, openai.OpenAI]:
    control = service.client(authorization="Bearer restart-control")
    proxy = openai.OpenAI(
        base_url=f"{service.url}/online/sessions/durable/v1", api_key="restart-proxy", max_retries=0
    )
    return control, proxy


def test_sigkill_mid_traffic_loses_nothing_acknowledged(
    tmp_path: Path, upstream: ThreadServer
) -> None:
    (tmp_path / "propose.py").write_text(PROPOSER)
    (tmp_path / "online.toml").write_text(session_toml(upstream.url, "durable"))
    rewards_url = "/online/sessions/durable/rewards"
    service = _service(tmp_path)
    acknowledged: dict[str, float] = {}
    unrewarded: list[str] = []
    try:
        control, proxy = _clients(service)
        assert (
            control.post("/online/sessions", json={"config_path": "online.toml"}).status_code == 201
        )
        for i in range(12):  # enough for a reflection and a challenger
            _, rollout, _ = chat(proxy, f"warm {i}")
            answer = control.post(rewards_url, json={"rollout_id": rollout, "reward": i % 2})
            assert answer.status_code == 201
            acknowledged[rollout] = float(i % 2)
        for i in range(5):
            unrewarded.append(chat(proxy, f"later {i}")[1])
        assert (
            control.post("/online/sessions/durable/pause", json={"reason": "test"}).status_code
            == 200
        )
        before = control.get("/online/sessions/durable").json()

        stop = threading.Event()

        def traffic() -> None:
            reward_client = httpx.Client(
                base_url=service.url, timeout=5, headers={"Authorization": "Bearer restart-proxy"}
            )
            n = 0
            while not stop.is_set():
                try:
                    _, rollout, _ = chat(proxy, f"busy {n}")
                    unrewarded.append(rollout)
                    answer = reward_client.post(
                        rewards_url,
                        json={"rollout_id": rollout, "reward": 0.25, "feedback": f"n{n}"},
                    )
                except (httpx.HTTPError, openai.APIError):
                    return  # the service died under us
                if answer.status_code == 201:
                    acknowledged[rollout] = 0.25
                    unrewarded.remove(rollout)
                n += 1

        thread = threading.Thread(target=traffic)
        thread.start()
        time.sleep(1.5)
        service.kill()  # SIGKILL, mid-traffic
        stop.set()
        thread.join(timeout=30)
        assert len(acknowledged) > 15
    finally:
        service.kill()

    restarted = _service(tmp_path)
    try:
        control, proxy = _clients(restarted)
        run_dir = tmp_path / "runs" / "durable"
        recorded = {row["rollout_id"]: row["score"] for row in read_jsonl(run_dir / layout.REWARDS)}
        missing = {r: s for r, s in acknowledged.items() if recorded.get(r) != s}
        assert missing == {}, f"acknowledged rewards lost: {missing}"
        info = control.get("/online/sessions/durable").json()
        assert info["state"] == "paused"
        assert info["state_history"] == before["state_history"]
        assert info["rewards"] == len(recorded)
        # an acknowledged reward is known: repeating it is accepted once
        rollout, score = next(iter(acknowledged.items()))
        again = control.post(rewards_url, json={"rollout_id": rollout, "reward": score})
        assert again.status_code == 200 and again.json()["recorded"] is False
        # rollouts served before the kill can still be rewarded
        for rollout in unrewarded[:5]:
            answer = control.post(rewards_url, json={"rollout_id": rollout, "reward": 1})
            assert answer.status_code == 201, answer.text
        # and serving goes on, with rollout ids the first life never handed out
        _, fresh, _ = chat(proxy, "after the restart")
        assert fresh.startswith("r1-")
    finally:
        restarted.stop()

    # what `gepa-cli events replay --check` and `gepa-cli workspace status` run
    replay = replay_events(run_dir / layout.EVENTS)
    report = check_artifacts(replay)
    assert report.ok, [d.line() for d in report.disagreements]
    assert layout.REWARDS in report.checked and layout.MANIFEST in report.checked
    assert any("opened again after a restart" in entry.text for entry in replay.timeline)
    [run] = workspace_status(tmp_path / "runs").runs
    assert run.state == "stopped" and not run.broken
