"""The task-app kit serves contract v1: shapes, validation, failures, bounds, async, auth."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gepa_cli.runtime.container.contract import parse_program, parse_rollout, parse_rows
from gepa_cli.taskapp import (
    BadRequest,
    Module,
    Rollout,
    RolloutFailed,
    RolloutResult,
    TaskApp,
    Unavailable,
    Usage,
)

WORDS = ("alpha", "beta", "gamma", "delta", "omega")


def word_row(split: str, seed: int) -> dict[str, Any]:
    return {"word": WORDS[(seed + len(split)) % len(WORDS)]}


async def mention(r: Rollout) -> RolloutResult:
    """Reward 1 when the prompt mentions the row's word; special rows misbehave."""
    word = r.row["word"]
    if word == "omega" and r.policy.backend == "strict":
        raise RolloutFailed("omega is not allowed under the strict policy")
    hit = word in r.candidate["instructions"]
    r.step(observation=word, action=hit, reward=float(hit))
    return RolloutResult(
        reward=float(hit),
        objectives={"mention": float(hit)},
        feedback="ok" if hit else f"Missing: {word}.",
        output=hit,
        usage=Usage(prompt_tokens=3, completion_tokens=1),
        metadata={"word": word},
    )


def make_app(**overrides: Any) -> TaskApp:
    options: dict[str, Any] = {
        "name": "mention",
        "description": "mention the word",
        "modules": [
            Module(module_id="main", field="instructions", seed="Say alpha.", objective="mention"),
            Module(module_id="style", field="style", seed="Be brief.", mutable=False),
        ],
        "splits": {"train": 10, "test": 4},
        "row": word_row,
        "rollout": mention,
        "api_key": "",
    }
    options.update(overrides)
    return TaskApp(**options)


def body(row: dict[str, Any], text: str = "alpha beta", **extra: Any) -> dict[str, Any]:
    return {
        "task_id": "mention",
        "candidate": {"instructions": text},
        "policy": {"backend": "offline"},
        "dataset_row": row,
        "metadata": {"candidate_id": "c0000"},
        **extra,
    }


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def test_handshake_routes_speak_contract_v1(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "contract_version": "gepa_cli.container.v1",
    }
    gepa = client.get("/metadata").json()["metadata"]["optimizer_contracts"]["gepa"]
    assert gepa["version"] == "gepa_cli.container.v1" and gepa["rollout_route"] == "/rollout"
    program = parse_program(client.get("/program").json())
    assert program.program_id == "mention"
    assert program.target_modules == ("instructions",)  # the immutable module is no target
    assert program.seed_candidate == {"instructions": "Say alpha."}
    assert client.get("/dataset").json() == {"splits": {"train": {"size": 10}, "test": {"size": 4}}}
    rows = client.post("/dataset/rows", json={"split": "test", "seeds": [3, 0, 3]}).json()
    parsed = rows["rows"]
    assert [r["example_id"] for r in parsed] == ["test:3", "test:0", "test:3"]
    assert parsed[0] == {"example_id": "test:3", "split": "test", "seed": 3, "word": "gamma"}


def test_rows_are_checked(client: TestClient) -> None:
    ok = client.post("/dataset/rows", json={"split": "train", "seeds": [0, 1]}).json()
    assert parse_rows(ok, "train", [0, 1], "POST /dataset/rows")[1]["seed"] == 1
    for request, code in [
        ({"split": "nope", "seeds": [0]}, "unknown_split"),
        ({"split": "train", "seeds": [10]}, "seed_out_of_range"),
        ({"split": "train", "seeds": [-1]}, "seed_out_of_range"),
        ({"split": "train", "seeds": ["0"]}, "invalid_request"),
        ({"seeds": [0]}, "invalid_request"),
    ]:
        answer = client.post("/dataset/rows", json=request)
        assert answer.status_code == 400, request
        assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_a_rollout_answers_in_the_contract_shape(client: TestClient) -> None:
    row = {"example_id": "train:0", "word": "alpha"}
    got = client.post("/rollout", json=body(row)).json()
    outcome = parse_rollout(got)
    assert (outcome.status, outcome.score, outcome.feedback) == ("completed", 1.0, "ok")
    assert got["usage"] == {"prompt_tokens": 3, "completion_tokens": 1}  # unpriced: no cost
    assert got["metadata"] == {"word": "alpha"}
    # the trace defaults to the recorded steps
    assert got["trace"] == [
        {"observation": "alpha", "action": True, "reward": 1.0, "messages": None, "info": None}
    ]
    missed = parse_rollout(client.post("/rollout", json=body({"word": "gamma"})).json())
    assert (missed.score, missed.feedback) == (0.0, "Missing: gamma.")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"task_id": "other"}, "unknown_task"),
        ({"candidate": {"instructions": "x", "typo": "y"}}, "unknown_candidate_field"),
        ({"candidate": "text"}, "invalid_request"),
        ({"dataset_row": None}, "invalid_request"),
        ({"submission_mode": "later"}, "invalid_request"),
        ({"policy": {"temperature": 9}}, "invalid_request"),
    ],
)
def test_bad_rollout_requests_are_400(
    client: TestClient, change: dict[str, Any], code: str
) -> None:
    answer = client.post("/rollout", json={**body({"word": "alpha"}), **change})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code


def test_missing_candidate_fields_take_the_seed() -> None:
    seen: list[dict[str, str]] = []

    async def record(r: Rollout) -> RolloutResult:
        seen.append(r.candidate)
        return RolloutResult(reward=0.5)

    client = TestClient(make_app(rollout=record))
    assert client.post("/rollout", json={**body({"word": "a"}), "candidate": {}}).status_code == 200
    assert seen == [{"instructions": "Say alpha.", "style": "Be brief."}]
    blank = make_app(
        rollout=record, modules=[Module(module_id="m", field="f", seed="")], name="blank"
    )
    answer = TestClient(blank).post("/rollout", json={"candidate": {}, "dataset_row": {}})
    assert answer.json()["error"]["code"] == "missing_candidate_field"


def test_failures_in_task_code_are_failed_rollouts_not_crashes() -> None:
    async def broken(r: Rollout) -> RolloutResult:
        kind = r.row["kind"]
        if kind == "raise":
            raise KeyError("label")
        if kind == "nan":
            return RolloutResult(reward=float("nan"))
        if kind == "dict":
            return {"reward": 1.0}  # type: ignore[return-value]
        if kind == "not_json":
            return RolloutResult(reward=1.0, output={1, 2})
        if kind == "bad_request":
            raise BadRequest("invalid_row", "row has no label")
        if kind == "busy":
            raise Unavailable("model overloaded", status=429)
        return RolloutResult(reward=1.0)

    client = TestClient(make_app(rollout=broken))
    expect = {
        "raise": "KeyError: 'label'",
        "nan": "RolloutResult.reward must be a finite number, got nan",
        "dict": "must return a RolloutResult, got dict",
        "not_json": "not JSON",
    }
    for kind, message in expect.items():
        got = client.post("/rollout", json=body({"kind": kind})).json()
        assert got["status"] == "failed" and message in got["error"], got
        assert parse_rollout(got).status == "failed"
    bad = client.post("/rollout", json=body({"kind": "bad_request"}))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_row"
    busy = client.post("/rollout", json=body({"kind": "busy"}))
    assert busy.status_code == 429 and busy.json()["error"]["code"] == "unavailable"
    # and the server still serves
    assert client.post("/rollout", json=body({"kind": "fine"})).json()["status"] == "completed"


def test_rollout_failed_keeps_the_steps_taken() -> None:
    client = TestClient(make_app())
    got = client.post(
        "/rollout", json={**body({"word": "omega"}), "policy": {"backend": "strict"}}
    ).json()
    assert got == {
        "rollout_id": got["rollout_id"],
        "status": "failed",
        "error": "omega is not allowed under the strict policy",
    }


def test_wall_time_and_steps_are_bounded() -> None:
    async def slow(r: Rollout) -> RolloutResult:
        await asyncio.sleep(5)
        return RolloutResult(reward=1.0)

    async def chatty(r: Rollout) -> RolloutResult:
        for turn in range(100):
            r.step(observation=turn, action="go")
        return RolloutResult(reward=1.0)

    def busy_loop(r: Rollout) -> RolloutResult:  # plain function: runs in a thread
        while True:
            r.check()
            time.sleep(0.01)

    timed = TestClient(make_app(rollout=slow, max_rollout_seconds=0.2))
    got = timed.post("/rollout", json=body({"w": 1})).json()
    assert got["status"] == "failed" and got["error"].startswith("wall time:")
    looped = TestClient(make_app(rollout=busy_loop, max_rollout_seconds=0.2))
    got = looped.post("/rollout", json=body({"w": 1})).json()
    assert got["status"] == "failed" and "max_rollout_seconds=0.2" in got["error"]
    limited = TestClient(make_app(rollout=chatty, max_steps=3))
    got = limited.post("/rollout", json=body({"w": 1})).json()
    assert got["status"] == "failed" and "max_steps=3" in got["error"]
    assert [step["observation"] for step in got["trace"]] == [0, 1, 2]


async def test_async_submission_polling_and_terminate() -> None:
    release = asyncio.Event()

    async def waits(r: Rollout) -> RolloutResult:
        if r.row.get("wait"):
            await release.wait()
        return RolloutResult(reward=0.25, feedback="done")

    transport = httpx.ASGITransport(app=make_app(rollout=waits))
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as c:
        quick = await c.post("/rollout", json=body({"x": 1}, submission_mode="async"))
        assert quick.status_code == 202 and quick.json()["status"] == "queued"
        rid = quick.json()["rollout_id"]
        for _ in range(200):
            state = (await c.get(f"/rollouts/{rid}")).json()
            if state["status"] == "completed":
                break
            await asyncio.sleep(0.01)
        assert parse_rollout(state).score == 0.25 and state["rollout_id"] == rid

        held = await c.post("/rollout", json=body({"wait": True}, submission_mode="async"))
        hid = held.json()["rollout_id"]
        await asyncio.sleep(0.02)
        assert (await c.get(f"/rollouts/{hid}")).json()["status"] == "running"
        done = (await c.post(f"/rollouts/{hid}/terminate", json={"reason": "timeout"})).json()
        assert done == {"rollout_id": hid, "status": "cancelled", "reason": "timeout"}
        release.set()
        await asyncio.sleep(0.02)
        assert (await c.get(f"/rollouts/{hid}")).json()["status"] == "cancelled"
        # terminating a finished rollout changes nothing; unknown ids are 404s
        again = (await c.post(f"/rollouts/{rid}/terminate")).json()
        assert again["status"] == "completed"
        missing = await c.get("/rollouts/r-nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_rollout"
        assert (await c.get("/nope")).json()["error"]["code"] == "not_found"


async def test_max_concurrency_bounds_rollouts_in_flight() -> None:
    running = peak = 0

    async def counted(r: Rollout) -> RolloutResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return RolloutResult(reward=1.0)

    transport = httpx.ASGITransport(app=make_app(rollout=counted, max_concurrency=2))
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as c:
        answers = await asyncio.gather(*(c.post("/rollout", json=body({"i": i})) for i in range(8)))
    assert all(a.json()["status"] == "completed" for a in answers)
    assert peak == 2


def test_api_key_guards_every_route_but_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_KEY", "s3cret")
    client = TestClient(make_app(api_key=None, api_key_env="KIT_TEST_KEY"))
    assert client.get("/health").status_code == 200
    denied = client.get("/program")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
    assert client.get("/program", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/program", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/dataset", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_lifespan_state_async_rows_and_computed_splits() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: TaskApp) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"words": ["x", "y", "z"]}
        events.append("shutdown")

    app_ref: dict[str, TaskApp] = {}

    async def row(split: str, seed: int) -> dict[str, Any]:
        return {"word": app_ref["app"].state.words[seed]}

    async def uses_state(r: Rollout) -> RolloutResult:
        return RolloutResult(reward=float(r.row["word"] in r.state.words))

    app = make_app(
        lifespan=lifespan,
        row=row,
        rollout=uses_state,
        splits=lambda: {"train": len(getattr(app_ref["app"].state, "words", []))},
    )
    app_ref["app"] = app
    with TestClient(app) as client:
        assert events == ["startup"]
        assert client.get("/dataset").json() == {"splits": {"train": {"size": 3}}}
        rows = client.post("/dataset/rows", json={"split": "train", "seeds": [2]}).json()["rows"]
        assert rows[0]["word"] == "z"
        assert (
            client.post("/rollout", json=body(rows[0])).json()["reward_info"]["outcome_reward"]
            == 1.0
        )
    assert events == ["startup", "shutdown"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "TaskApp.name"),
        ({"modules": []}, "non-empty list of Module"),
        ({"splits": {"train": -1}}, "splits['train']"),
        ({"splits": {}}, "map split names"),
        ({"max_rollout_seconds": 0}, "max_rollout_seconds"),
        ({"max_steps": 0}, "max_steps"),
        ({"rollout": "nope"}, "TaskApp.rollout"),
        (
            {"modules": [Module(module_id="a", field="f", seed="s")] * 2},
            "own module_id",
        ),
    ],
)
def test_a_wrong_declaration_fails_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_app(**kwargs)


def test_values_check_themselves() -> None:
    with pytest.raises(ValueError, match=r"Usage\.prompt_tokens"):
        Usage(prompt_tokens=-1)
    with pytest.raises(ValueError, match="objectives"):
        RolloutResult(reward=1.0, objectives={"a": float("inf")})
    with pytest.raises(ValueError, match=r"Module\.field"):
        Module(module_id="m", field=" ", seed="x")
    assert Usage(1, 2, 0.5).to_json() == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "cost_usd": 0.5,
    }


def test_the_kit_imports_nothing_from_the_optimizer() -> None:
    """design.md section 1: a container never depends on the optimizer's internals."""
    code = (
        "import sys, gepa_cli.taskapp; "
        "print(' '.join(m for m in sys.modules if m.startswith('gepa_cli.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "gepa_cli.taskapp" in loaded
    for layer in ("engine", "runner", "runtime", "cli", "service", "config", "artifacts"):
        assert not [m for m in loaded if m.startswith(f"gepa_cli.{layer}")], layer
