"""The Python client and `gepa-cli online`, against a real service; the reflective
dataset a proposer receives; a proposer that keeps failing."""

from __future__ import annotations

import itertools
import json
import time

import orjson
import pytest

from gepa_cli.client import ServiceRefusedError
from gepa_cli.online import OnlineClient
from online.support import CONTROL_KEY, OnlineService, chat, session_toml
from support.chat_upstream import ThreadServer
from support.cli import run_cli

RECORDING_PROPOSER = """\
import json, sys
request = json.load(sys.stdin)
open("last_request.json", "w").write(json.dumps(request))
print("```\\n" + request["current_text"] + " Be brief.\\n```")
"""


def test_client_controls_a_session(service: OnlineService, upstream: ThreadServer) -> None:
    (service.root / "propose.py").write_text(RECORDING_PROPOSER)
    with OnlineClient(service.url, api_key=CONTROL_KEY) as client:
        created = client.create(config_toml=session_toml(upstream.url, "cli"))
        assert created["session_id"] == "cli" and created["state"] == "active"
        assert client.proxy_base_url("cli").endswith("/online/sessions/cli/v1")
        proxy = service.openai("cli")
        rollouts = []
        for i in range(3):
            rollouts.append(chat(proxy, f"question {i}")[1])
            result = client.reward("cli", rollouts[-1], 0.0, feedback=f"wrong {i}")
            assert result["recorded"] is True
        # a reflection on the seed's three rewarded rollouts
        deadline = time.monotonic() + 30
        while client.get("cli")["proposals"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        request = json.loads((service.root / "last_request.json").read_text())
        dataset = request["reflective_dataset"]
        assert [r["example_id"] for r in dataset] == rollouts
        assert dataset[0]["inputs"]["messages"] == [{"role": "user", "content": "question 0"}]
        assert dataset[0]["output"] == "system=You are a helpful assistant.|user=question 0"
        assert dataset[2]["score"] == 0.0 and dataset[2]["feedback"] == "wrong 2"
        assert request["current_text"] == "You are a helpful assistant."

        assert [s["session_id"] for s in client.sessions()] == ["cli"]
        assert client.prompt("cli")["candidate_id"] == "c0000"
        assert {c["candidate_id"] for c in client.candidates("cli")} == {"c0000", "c0001"}
        assert client.pause("cli", "lunch")["state"] == "paused"
        assert client.state("cli")["state"] == "paused"
        assert client.resume("cli")["state"] == "active"
        kinds = [e["type"] for e in client.events("cli")]
        assert "reflection.started" in kinds and "proposal.completed" in kinds
        followed = list(itertools.islice(client.follow("cli", after=2), 4))
        assert [e["seq"] for e in followed] == [3, 4, 5, 6]
        with pytest.raises(ServiceRefusedError, match=": 409 ") as conflict:
            client.resume("cli")
        assert conflict.value.code == "session_conflict"
        with pytest.raises(ServiceRefusedError, match=": 404 ") as unknown:
            client.reward("cli", "r9-0000001", 1.0)
        assert unknown.value.code == "unknown_rollout"
    with (
        OnlineClient(service.url, api_key="wrong") as bad,
        pytest.raises(ServiceRefusedError, match=": 401 "),
    ):
        bad.get("cli")


def test_cli_online_commands(
    service: OnlineService, upstream: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONTROL_KEY", CONTROL_KEY)
    config = service.root / "online.toml"
    config.write_text(session_toml(upstream.url, "shell"))
    common = ("--url", service.url, "--api-key-env", "TEST_CONTROL_KEY")
    validated = run_cli("online", "validate", "--config", str(config))
    assert validated.exit_code == 0 and "valid" in validated.stdout
    created = run_cli("online", "create", "--config", str(config), *common, "--json")
    assert created.exit_code == 0, created.output
    assert orjson.loads(created.stdout)["proxy_base_url"].endswith("/online/sessions/shell/v1")
    _, rollout, _ = chat(service.openai("shell"), "hello")
    rewarded = run_cli(
        "online", "reward", "shell", rollout, "--score", "1", "--feedback", "ok", *common
    )
    assert rewarded.exit_code == 0 and "recorded" in rewarded.stdout
    shown = run_cli("online", "show", "shell", *common)
    assert "shell: active, best c0000, served 1, rewards 1" in shown.stdout
    assert run_cli("online", "pause", "shell", "--reason", "x", *common).exit_code == 0
    cancelled = run_cli("online", "cancel", "shell", *common, "--json")
    assert orjson.loads(cancelled.stdout)["state"] == "cancelled"
    again = run_cli("online", "cancel", "shell", *common)
    # refused as every service request is (exit 2), with the server's one-line reason
    assert again.exit_code == 2 and ": 409 " in again.stderr and "cancelled" in again.stderr
    prompt = run_cli("online", "prompt", "shell", *common)
    assert "You are a helpful assistant." in prompt.stdout
    events = run_cli("online", "events", "shell", *common)
    assert orjson.loads(events.stdout.splitlines()[0])["type"] == "session.created"
    listed = run_cli("online", "list", *common)
    assert "shell: cancelled" in listed.stdout
    candidates = run_cli("online", "candidates", "shell", *common)
    assert candidates.stdout.startswith("c0000")
    unset = run_cli("online", "list", "--url", service.url, "--api-key-env", "NOT_SET_ANYWHERE")
    assert unset.exit_code == 2 and "NOT_SET_ANYWHERE" in unset.stderr


def test_a_proposer_that_keeps_failing_fails_the_session(
    service: OnlineService, upstream: ThreadServer
) -> None:
    (service.root / "propose.py").write_text("import sys\nsys.exit('the proposer is broken')\n")
    service.create(
        session_toml(
            upstream.url, "broken", gepa="max_proposals = 5\nmax_consecutive_proposer_failures = 2"
        )
    )
    proxy = service.openai("broken")
    with service.control() as control:
        deadline = time.monotonic() + 60
        while control.get("/online/sessions/broken").json()["state"] != "failed":
            assert time.monotonic() < deadline, "the session did not fail"
            _, rollout, _ = chat(proxy, "q")
            control.post(
                "/online/sessions/broken/rewards", json={"rollout_id": rollout, "reward": 0}
            )
        info = control.get("/online/sessions/broken").json()
        assert info["stopped_by"] == "proposer_error" and info["proposals"] == 2
        assert "the proposer is broken" in info["error"]["message"]
        # serving goes on with the best
        assert chat(proxy, "still there?")[2] == "c0000"
    proposals = [
        orjson.loads(line) for line in (service.run_dir("broken") / "proposals.jsonl").open("rb")
    ]
    assert [p["outcome"].split(":")[0] for p in proposals] == ["error", "error"]


def test_cancel_during_a_reflection_learns_nothing_from_it(
    service: OnlineService, upstream: ThreadServer
) -> None:
    slow = "import json, sys, time\nr = json.load(sys.stdin)\ntime.sleep(1.5)\n"
    slow += 'print("```\\n" + r["current_text"] + " Later.\\n```")\n'
    (service.root / "propose.py").write_text(slow)
    service.create(session_toml(upstream.url, "abandon"))
    proxy = service.openai("abandon")
    with service.control() as control:
        for _ in range(3):
            _, rollout, _ = chat(proxy, "q")
            control.post(
                "/online/sessions/abandon/rewards", json={"rollout_id": rollout, "reward": 0}
            )
        assert control.get("/online/sessions/abandon").json()["reflection_in_flight"] is True
        cancelled = control.post("/online/sessions/abandon/cancel").json()
        assert cancelled["state"] == "cancelled" and cancelled["reflection_in_flight"] is False
        time.sleep(2.5)  # the proposer answers after the cancel
        candidates = control.get("/online/sessions/abandon/candidates").json()["candidates"]
        assert [c["candidate_id"] for c in candidates] == ["c0000"]
    rows = [
        orjson.loads(line) for line in (service.run_dir("abandon") / "proposals.jsonl").open("rb")
    ]
    assert [r["outcome"].split(":")[0] for r in rows] == ["abandoned"]
