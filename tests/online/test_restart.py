"""SIGKILL the service in the middle of traffic, start it again: nothing acknowledged is
lost, earlier rollouts can still be rewarded, the lifecycle is unchanged, and the run
directory replays clean as soon as the restarted service has rebuilt it (while it
serves, and after it is killed in turn): no graceful stop is needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai

from gepa_cli.artifacts import layout, read_jsonl
from gepa_cli.workspace import workspace_status
from online.support import PROPOSER, UPSTREAM_KEY, UPSTREAM_KEY_ENV, chat, session_toml
from service.support import Service
from support.chat_upstream import ThreadServer
from support.cli import run_cli

KEYS = {"CTRL_KEY": "restart-control", "PROXY_KEY": "restart-proxy", UPSTREAM_KEY_ENV: UPSTREAM_KEY}
REWARDS = "/online/sessions/durable/rewards"


def _service(root: Path) -> Service:
    args = ("--workers", "0", "--api-key-env", "CTRL_KEY", "--proxy-key-env", "PROXY_KEY")
    return Service(root, *args, env=KEYS).start()


def _clients(service: Service) -> tuple[httpx.Client, openai.OpenAI]:
    control = service.client(authorization="Bearer restart-control")
    proxy = openai.OpenAI(
        base_url=f"{service.url}/online/sessions/durable/v1", api_key="restart-proxy", max_retries=0
    )
    return control, proxy


class Traffic:
    """Callers in threads: a call, then its reward, again and again, until stopped or the
    service dies under them. Records what was acknowledged and what was left unrewarded."""

    def __init__(self, service: Service, callers: int = 3) -> None:
        self.service = service
        self.stop = threading.Event()
        self.acknowledged: dict[str, float] = {}
        self.unrewarded: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(callers)]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, caller: int) -> None:
        _, proxy = _clients(self.service)
        headers = {"Authorization": "Bearer restart-proxy"}
        with httpx.Client(base_url=self.service.url, timeout=5, headers=headers) as rewards:
            n = 0
            while not self.stop.is_set():
                try:
                    _, rollout, _ = chat(proxy, f"busy {caller}.{n}")
                    self.unrewarded.append(rollout)
                    score = 0.25 * (n % 3)
                    answer = rewards.post(
                        REWARDS, json={"rollout_id": rollout, "reward": score, "feedback": f"n{n}"}
                    )
                except (httpx.HTTPError, openai.APIError):
                    return  # the service died under us
                if answer.status_code == 201:
                    self.acknowledged[rollout] = score
                    self.unrewarded.remove(rollout)
                n += 1


def _consistent(run_dir: Path, state: str) -> None:
    """`gepa-cli events replay --check` passes and workspace status finds no broken
    invariant."""
    checked = run_cli("events", "replay", "--events", str(run_dir / layout.EVENTS), "--check")
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    [run] = workspace_status(run_dir.parent).runs
    assert run.state == state and not run.broken, (run.state, run.invariants)


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigkill_mid_traffic_loses_nothing_acknowledged(
    tmp_path: Path, upstream: ThreadServer
) -> None:
    (tmp_path / "propose.py").write_text(PROPOSER)
    (tmp_path / "online.toml").write_text(session_toml(upstream.url, "durable"))
    run_dir = tmp_path / "runs" / "durable"
    acknowledged: dict[str, float] = {}
    # a first life that ends gracefully, leaving a manifest the next life makes stale
    first = _service(tmp_path)
    try:
        control, proxy = _clients(first)
        created = control.post("/online/sessions", json={"config_path": "online.toml"})
        assert created.status_code == 201
        for i in range(12):  # enough for a reflection and a challenger
            _, rollout, _ = chat(proxy, f"warm {i}")
            assert control.post(REWARDS, json={"rollout_id": rollout, "reward": i % 2}).is_success
            acknowledged[rollout] = float(i % 2)
    finally:
        first.stop()
    assert (run_dir / layout.MANIFEST).exists()

    service = _service(tmp_path)
    try:
        control, proxy = _clients(service)
        unrewarded = [chat(proxy, f"later {i}")[1] for i in range(5)]
        paused = control.post("/online/sessions/durable/pause", json={"reason": "test"})
        assert paused.status_code == 200
        before = control.get("/online/sessions/durable").json()
        with Traffic(service) as traffic:
            _until(lambda: len(traffic.acknowledged) >= 20)
            service.kill()  # SIGKILL, mid-traffic
        acknowledged |= traffic.acknowledged
        unrewarded += traffic.unrewarded
    finally:
        service.kill()

    restarted = _service(tmp_path)
    try:
        control, proxy = _clients(restarted)
        recorded = {row["rollout_id"]: row["score"] for row in read_jsonl(run_dir / layout.REWARDS)}
        missing = {r: s for r, s in acknowledged.items() if recorded.get(r) != s}
        assert missing == {}, f"acknowledged rewards lost: {missing}"
        info = control.get("/online/sessions/durable").json()
        assert info["state"] == "paused"
        assert info["state_history"] == before["state_history"]
        assert info["rewards"] == len(recorded)
        # an acknowledged reward is known: repeating it is accepted once
        rollout, score = next(iter(acknowledged.items()))
        again = control.post(REWARDS, json={"rollout_id": rollout, "reward": score})
        assert again.status_code == 200 and again.json()["recorded"] is False
        # rollouts served before the kill can still be rewarded
        for rollout in unrewarded[:5]:
            answer = control.post(REWARDS, json={"rollout_id": rollout, "reward": 1})
            assert answer.status_code == 201, answer.text
        # and serving goes on, with rollout ids no earlier life handed out
        _, fresh, _ = chat(proxy, "after the restart")
        assert fresh.startswith("r2-")
        # the rebuilt directory is consistent while it is served: the stale manifest is
        # gone, and rows written after the feed was read are not counted against it
        assert not (run_dir / layout.MANIFEST).exists()
        with Traffic(restarted) as traffic:
            _until(lambda: len(traffic.acknowledged) >= 10)
            _consistent(run_dir, "running")
            _until(lambda: len(traffic.acknowledged) >= 20)
        # killed again once the traffic stopped: still consistent, no graceful stop
        restarted.kill()
        _consistent(run_dir, "crashed")
    finally:
        restarted.kill()

    replayed = run_cli("events", "replay", "--events", str(run_dir / layout.EVENTS))
    assert replayed.stdout.count("opened again after a restart") == 2
