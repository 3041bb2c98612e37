"""Bad input of every kind: a clear error each time, and nothing recorded is lost."""

from __future__ import annotations

import httpx
import openai
import pytest

from gepa_cli.artifacts import layout, read_jsonl
from online.support import CONTROL_KEY, PROXY_KEY, OnlineService, chat, session_toml
from support.chat_upstream import ThreadServer

JSON = {"Content-Type": "application/json"}


def test_malformed_chat_bodies_are_400s_in_the_openai_shape(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(session_toml(upstream.url, "bodies"))
    url = f"{service.url}/online/sessions/bodies/v1/chat/completions"
    auth = {"Authorization": f"Bearer {PROXY_KEY}", **JSON}
    cases = [
        (b"{not json", "invalid_json", None),
        (b"[1, 2]", "invalid_chat_body", None),
        (b'{"model": "m"}', "invalid_chat_body", "messages"),
        (b'{"messages": []}', "invalid_chat_body", "messages"),
        (b'{"messages": ["hi"]}', "invalid_chat_body", "messages[0]"),
        (b'{"messages": [{"content": "hi"}]}', "invalid_chat_body", "messages[0].role"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "invalid_chat_body", None),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "invalid_chat_body",
            "stream",
        ),
    ]
    for body, code, param in cases:
        answer = httpx.post(url, content=body, headers=auth)
        assert answer.status_code == 400, body
        error = answer.json()["error"]
        assert error["code"] == code and error["type"] == "invalid_request_error"
        assert error["message"] and "\n" not in error["message"]
        if param:
            assert error["param"] == param
    # nothing was routed or recorded
    assert read_jsonl(service.run_dir("bodies") / layout.ROLLOUTS) == []


def test_keys_are_separate_and_checked(service: OnlineService, upstream: ThreadServer) -> None:
    service.create(session_toml(upstream.url, "keys"))
    for key in ("wrong", CONTROL_KEY):
        with pytest.raises(openai.AuthenticationError):
            chat(service.openai("keys", key=key), "hello")
    missing = httpx.post(
        f"{service.url}/online/sessions/keys/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}]},
    )
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    # the control API does not take the proxy key
    with httpx.Client(base_url=service.url, headers={"X-API-Key": PROXY_KEY}) as client:
        assert client.get("/online/sessions/keys").status_code == 401
        assert client.post("/online/sessions/keys/pause").status_code == 401
    # an unknown session through the proxy is a 404 in the OpenAI shape
    with pytest.raises(openai.NotFoundError):
        chat(service.openai("no-such-session"), "hello")
    assert read_jsonl(service.run_dir("keys") / layout.ROLLOUTS) == []


def test_reward_rules(service: OnlineService, upstream: ThreadServer) -> None:
    service.create(session_toml(upstream.url, "rewards"))
    client = service.openai("rewards")
    _, first, _ = chat(client, "one")
    _, second, _ = chat(client, "two")
    post = "/online/sessions/rewards/rewards"
    proxy = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {PROXY_KEY}"})
    with service.control() as control, proxy:
        # the proxy's callers may post rewards with their own key
        ok = proxy.post(post, json={"rollout_id": first, "reward": 0.5, "feedback": "fine"})
        assert ok.status_code == 201 and ok.json()["recorded"] is True
        # the same reward again: accepted, recorded once
        again = control.post(post, json={"rollout_id": first, "reward": 0.5, "feedback": "fine"})
        assert again.status_code == 200 and again.json()["recorded"] is False
        # a different one: 409, whatever differs
        for changed in ({"reward": 0.6, "feedback": "fine"}, {"reward": 0.5, "feedback": "meh"}):
            conflict = control.post(post, json={"rollout_id": first, **changed})
            assert conflict.status_code == 409
            assert conflict.json()["error"]["code"] == "reward_conflict"
        unknown = control.post(post, json={"rollout_id": "r0-9999999", "reward": 1})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_rollout"
        bad_bodies = [
            b'{"rollout_id": "%s", "reward": NaN}' % second.encode(),
            b'{"rollout_id": "%s", "reward": Infinity}' % second.encode(),
            b'{"rollout_id": "%s", "reward": "0.5"}' % second.encode(),
            b'{"rollout_id": "%s", "reward": true}' % second.encode(),
            b'{"rollout_id": "%s", "reward": null}' % second.encode(),
            b'{"rollout_id": "%s"}' % second.encode(),
            b'{"rollout_id": "%s", "reward": 1, "objectives": {"a": NaN}}' % second.encode(),
        ]
        for body in bad_bodies:
            answer = control.post(post, content=body, headers=JSON)
            assert answer.status_code == 422, body
            assert answer.json()["error"]["message"]
        wrong_key = httpx.post(
            f"{service.url}{post}", json={"rollout_id": second, "reward": 1},
            headers={"Authorization": "Bearer nope"},
        )  # fmt: skip
        assert wrong_key.status_code == 401
        # the second rollout is still unrewarded and takes a good reward
        assert control.post(post, json={"rollout_id": second, "reward": 1}).status_code == 201
    rows = read_jsonl(service.run_dir("rewards") / layout.REWARDS)
    assert [(r["rollout_id"], r["score"], r["feedback"]) for r in rows] == [
        (first, 0.5, "fine"),
        (second, 1.0, None),
    ]


def test_bad_session_configs_are_one_line_422s(
    service: OnlineService, upstream: ThreadServer
) -> None:
    good = session_toml(upstream.url, "cfg")
    cases = [
        (good.replace("[online]", "[online]\nexplore_shar = 0.5"), "did you mean 'explore_share'"),
        (good.replace('model = "test-model"', 'model = "m"\napi_key = "sk-abcdefghijklmnopqrstu"'),
         "api_key_env"),
        (good.replace('base_url = "', 'base_url = "ftp'), "upstream.base_url"),
        (good.replace("max_proposals = 3", ""), "no budget is set"),
        (good.replace("[online]", "[online]\ninjection = \"everywhere\""), "online.injection"),
    ]  # fmt: skip
    with service.control() as control:
        for toml, expected in cases:
            answer = control.post("/online/sessions", json={"config_toml": toml})
            assert answer.status_code == 422, toml
            message = answer.json()["error"]["message"]
            assert expected in message and "\n" not in message
        assert control.get("/online/sessions").json()["sessions"] == []
