"""The proxy, called with the official openai SDK, in front of a local upstream."""

from __future__ import annotations

import openai
import orjson
import pytest

from gepa_cli.artifacts import layout, read_jsonl
from online.support import UPSTREAM_KEY, OnlineService, chat, session_toml
from support.chat_upstream import SEEN, USAGE, ThreadServer


def test_plain_call_injects_the_candidate_and_names_the_rollout(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(session_toml(upstream.url, "plain"))
    client = service.openai("plain")
    SEEN.clear()
    raw = client.chat.completions.with_raw_response.create(
        model="caller-model",
        messages=[
            {"role": "system", "content": "the caller's own system text"},
            {"role": "user", "content": "hello"},
        ],
    )
    completion = raw.parse()
    # system_replace: the seed's text replaced the caller's system message
    assert completion.choices[0].message.content == "system=You are a helpful assistant.|user=hello"
    assert raw.headers["x-gepa-candidate-id"] == "c0000"
    rollout_id = raw.headers["x-gepa-rollout-id"]
    assert raw.headers["x-gepa-session-id"] == "plain"
    # the upstream got its own key and the configured model, never the proxy's key
    assert SEEN[-1]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert SEEN[-1]["body"]["model"] == "test-model"
    assert completion.usage is not None and completion.usage.prompt_tokens == 7

    rows = read_jsonl(service.run_dir("plain") / layout.ROLLOUTS)
    assert len(rows) == 1
    row = rows[0]
    assert row["example_id"] == rollout_id and row["candidate_id"] == "c0000"
    assert row["status"] == "completed" and row["score"] is None
    assert row["usage"]["prompt_tokens"] == USAGE["prompt_tokens"]
    assert row["usage"]["completion_tokens"] == USAGE["completion_tokens"]
    # the caller's messages as sent (before injection) are what reflection will read
    assert row["inputs"]["messages"][0]["content"] == "the caller's own system text"
    assert row["output"] == completion.choices[0].message.content
    with service.control() as control:
        info = control.get("/online/sessions/plain").json()
    assert info["usage"]["upstream"]["calls"] == 1
    assert info["usage"]["upstream"]["prompt_tokens"] == 7
    [c0000] = [c for c in service_candidates(service, "plain") if c["candidate_id"] == "c0000"]
    assert c0000["usage"]["completion_tokens"] == 3 and c0000["served"] == 1


def service_candidates(service: OnlineService, session_id: str) -> list[dict]:
    with service.control() as control:
        return list(control.get(f"/online/sessions/{session_id}/candidates").json()["candidates"])


def test_streaming_keeps_the_headers_and_meters_usage(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(session_toml(upstream.url, "stream"))
    client = service.openai("stream")
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=[{"role": "user", "content": "hi there"}], stream=True
    ) as response:
        assert response.headers["x-gepa-candidate-id"] == "c0000"
        rollout_id = response.headers["x-gepa-rollout-id"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "system=You are a helpful assistant.|user=hi there"
    # the caller did not ask for the usage chunk, so it was metered but not relayed
    assert all(c.choices for c in chunks)
    row = read_jsonl(service.run_dir("stream") / layout.ROLLOUTS)[-1]
    assert row["example_id"] == rollout_id and row["output"] == text
    assert row["usage"]["prompt_tokens"] == 7 and row["usage"]["completion_tokens"] == 3

    # asked for, the usage chunk reaches the caller
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "again"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert usage and usage[0].completion_tokens == 3
    # a streamed rollout can be rewarded once its stream has ended
    with service.control() as control:
        assert (
            control.post(
                "/online/sessions/stream/rewards", json={"rollout_id": rollout_id, "reward": 1}
            ).status_code
            == 201
        )


@pytest.mark.parametrize(
    ("mode", "messages", "expected"),
    [
        (
            "system_prepend",
            [{"role": "system", "content": "Caller rules."}, {"role": "user", "content": "q"}],
            "system=Be kind.\n\nCaller rules.|user=q",
        ),
        ("system_prepend", [{"role": "user", "content": "q"}], "system=Be kind.|user=q"),
        ("system_replace", [{"role": "user", "content": "q"}], "system=Be kind.|user=q"),
        (
            "placeholders",
            [
                {"role": "system", "content": "Rules: {{rules}} End."},
                {"role": "user", "content": "q"},
            ],
            "system=Rules: Be kind. End.|user=q",
        ),
    ],
)
def test_injection_modes(
    service: OnlineService, upstream: ThreadServer, mode: str, messages: list, expected: str
) -> None:
    module = "rules"
    sid = f"inject-{mode}-{len(messages)}"
    service.create(
        session_toml(upstream.url, sid, online={"injection": mode}, seed={module: "Be kind."})
    )
    completion = service.openai(sid).chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].message.content == expected


def test_placeholders_mode_refuses_a_body_without_one(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(
        session_toml(upstream.url, "ph", online={"injection": "placeholders"}, seed={"rules": "x"})
    )
    with pytest.raises(openai.BadRequestError, match=r"\{\{rules\}\}"):
        service.openai("ph").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "no placeholder here"}]
        )
    assert read_jsonl(service.run_dir("ph") / layout.ROLLOUTS) == []


def test_upstream_errors_pass_through_as_openai_errors(
    service: OnlineService, upstream: ThreadServer
) -> None:
    service.create(session_toml(upstream.url, "errors"))
    client = service.openai("errors")
    with pytest.raises(openai.InternalServerError) as caught:
        chat(client, "fail:500")
    assert caught.value.status_code == 500
    assert caught.value.body["message"] == "upstream says 500"  # the upstream's own body
    failed_id = caught.value.response.headers["x-gepa-rollout-id"]
    with pytest.raises(openai.RateLimitError):
        chat(client, "fail:429")
    # a plain-text error body is wrapped in the OpenAI shape
    with pytest.raises(openai.APIStatusError) as plain:
        chat(client, "plain:503")
    assert plain.value.status_code == 503
    assert "the model fell over" in plain.value.body["message"]
    # streamed calls get the same pass-through
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "fail:400"}], stream=True
        )
    rows = read_jsonl(service.run_dir("errors") / layout.ROLLOUTS)
    assert [r["status"] for r in rows] == ["failed"] * 4
    assert rows[0]["error"].startswith("HTTP 500")
    # a failed call has no answer to reward
    with service.control() as control:
        answer = control.post(
            "/online/sessions/errors/rewards", json={"rollout_id": failed_id, "reward": 0.0}
        )
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "reward_conflict"


def test_an_unreachable_upstream_is_a_502(service: OnlineService) -> None:
    from service.support import free_port

    service.create(session_toml(f"http://127.0.0.1:{free_port()}", "down"))
    with pytest.raises(openai.APIStatusError) as caught:
        chat(service.openai("down"), "hello")
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_unreachable"
    feed = [orjson.loads(line) for line in (service.run_dir("down") / layout.EVENTS).open("rb")]
    served = [e for e in feed if e["type"] == "rollout.served"]
    assert served[0]["data"]["status"] == "failed" and served[0]["data"]["upstream_status"] == 502
