"""Pause, resume, cancel, the terminal-state rules and their 409s."""

from __future__ import annotations

import time

from online.support import OnlineService, chat, session_toml
from support.chat_upstream import ThreadServer


def _learn_until_challenger(service: OnlineService, sid: str) -> str:
    """Reward the seed until a reflection registers a challenger; return its id."""
    client = service.openai(sid)
    with service.control() as control:
        for _ in range(60):
            _, rollout, _ = chat(client, "q")
            control.post(
                f"/online/sessions/{sid}/rewards", json={"rollout_id": rollout, "reward": 0}
            )
            challengers = control.get(f"/online/sessions/{sid}").json()["challengers"]
            if challengers:
                return str(challengers[0])
            time.sleep(0.02)
    raise AssertionError("no challenger appeared")


def test_pause_resume_cancel_and_the_terminal_rules(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(session_toml(upstream.url, "life", online={"explore_share": 0.5}))
    base = "/online/sessions/life"
    challenger = _learn_until_challenger(service, "life")
    with service.control() as control:
        assert control.get(base).json()["shares"] == {"c0000": 0.5, challenger: 0.5}

        # pause: no more learning, everything goes to the best
        paused = control.post(f"{base}/pause", json={"reason": "holiday"})
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert paused.json()["shares"] == {"c0000": 1.0}
        served = {chat(service.openai("life"), "q")[2] for _ in range(10)}
        assert served == {"c0000"}
        again = control.post(f"{base}/pause")
        assert again.status_code == 409 and again.json()["error"]["code"] == "session_conflict"

        # resume: the challenger gets its share back
        resumed = control.post(f"{base}/resume")
        assert resumed.json()["state"] == "active"
        assert resumed.json()["shares"] == {"c0000": 0.5, challenger: 0.5}
        assert control.post(f"{base}/resume").status_code == 409

        # cancel, pinning a candidate: terminal, and it alone is served from now on
        unknown = control.post(f"{base}/cancel", json={"serve": "c9999"})
        assert unknown.status_code == 404
        cancelled = control.post(f"{base}/cancel", json={"reason": "done", "serve": challenger})
        assert cancelled.status_code == 200
        body = cancelled.json()
        assert body["state"] == "cancelled" and body["stopped_by"] == "cancelled"
        assert body["shares"] == {challenger: 1.0} and body["challengers"] == []
        for action in ("pause", "resume", "cancel"):
            refused = control.post(f"{base}/{action}")
            assert refused.status_code == 409, action
            assert "final" in refused.json()["error"]["message"]
        served = {chat(service.openai("life"), "q")[2] for _ in range(5)}
        assert served == {challenger}
        # rewards are still taken (and recorded) but nothing is learned
        proposals = control.get(base).json()["proposals"]
        for _ in range(6):
            _, rollout, _ = chat(service.openai("life"), "q")
            ok = control.post(f"{base}/rewards", json={"rollout_id": rollout, "reward": 1})
            assert ok.status_code == 201
        info = control.get(base).json()
        assert info["proposals"] == proposals and info["state"] == "cancelled"
        history = [h["state"] for h in control.get(f"{base}/state").json()["state_history"]]
        assert history == ["active", "paused", "active", "cancelled"]
        # the prompt is the best's texts; candidates carry their statistics
        prompt = control.get(f"{base}/prompt").json()
        assert prompt["candidate_id"] == "c0000" and prompt["serving_id"] == challenger
        rows = control.get(f"{base}/candidates").json()["candidates"]
        assert {r["candidate_id"]: r["role"] for r in rows} == {
            "c0000": "incumbent",
            challenger: "retired",
        }


def test_a_spent_budget_completes_the_session(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(
        session_toml(upstream.url, "budget", gepa="max_total_rollouts = 5\nmax_proposals = 2")
    )
    client = service.openai("budget")
    for _ in range(8):
        chat(client, "q")
    with service.control() as control:
        info = control.get("/online/sessions/budget").json()
        assert info["state"] == "completed" and info["stopped_by"] == "max_total_rollouts"
        assert info["served"] == 8 and info["served_while_learning"] == 5
        assert control.post("/online/sessions/budget/resume").status_code == 409


def test_events_list_and_stream_resume_from_last_event_id(
    service: OnlineService, upstream: ThreadServer
) -> None:
    import httpx
    import orjson

    service.create(session_toml(upstream.url, "feed"))
    chat(service.openai("feed"), "q")
    with service.control() as control:
        listed = control.get("/online/sessions/feed/events").json()["events"]
        kinds = [e["type"] for e in listed]
        assert kinds[:3] == ["session.created", "candidate.registered", "traffic.updated"]
        assert kinds[-1] == "rollout.served"
        tail = control.get("/online/sessions/feed/events", params={"after": 1}).json()["events"]
        assert [e["seq"] for e in tail] == list(range(2, len(listed)))
        seen = []
        with control.stream(
            "GET", "/online/sessions/feed/events/stream", headers={"Last-Event-ID": "1"},
            timeout=httpx.Timeout(10, read=10),
        ) as stream:  # fmt: skip
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    seen.append(int(line[4:]))
                if len(seen) == len(listed) - 2:
                    break
        assert seen == list(range(2, len(listed)))
        assert orjson.loads(orjson.dumps(listed[0]))["data"]["session_id"] == "feed"
