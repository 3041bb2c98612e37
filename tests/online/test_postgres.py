"""Online sessions of a service whose queue is PostgreSQL: registered in the shared
database, held by one service process at a time, opened again by the next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from online.support import PROPOSER, UPSTREAM_KEY, UPSTREAM_KEY_ENV, chat, session_toml
from service.postgres import PostgresServer, required, unavailable
from service.support import Service
from support.chat_upstream import ThreadServer

KEYS = {"CTRL_KEY": "pg-control", "PROXY_KEY": "pg-proxy", UPSTREAM_KEY_ENV: UPSTREAM_KEY}
REWARDS = "/online/sessions/shared/rewards"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    reason = unavailable()
    if reason is not None:
        if required():
            pytest.fail(f"GEPA_TEST_POSTGRES=require, but {reason}")
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def _service(root: Path, url: str, name: str) -> Service:
    args = (
        "--workers", "0", "--data-dir", str(root / "service-data"),
        "--api-key-env", "CTRL_KEY", "--proxy-key-env", "PROXY_KEY",
    )  # fmt: skip
    return Service(root, *args, env=KEYS, db=url, cwd=root / name).start()


def _proxy(service: Service) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{service.url}/online/sessions/shared/v1", api_key="pg-proxy", max_retries=0
    )


def test_sessions_on_a_postgresql_service(
    tmp_path: Path, postgres: PostgresServer, upstream: ThreadServer
) -> None:
    url = postgres.create_database("online")
    (tmp_path / "propose.py").write_text(PROPOSER)
    (tmp_path / "online.toml").write_text(session_toml(upstream.url, "shared"))
    first = _service(tmp_path, url, "a")
    second = None
    try:
        control = first.client(authorization="Bearer pg-control")
        created = control.post("/online/sessions", json={"config_path": "online.toml"})
        assert created.status_code == 201, created.text
        assert created.json()["created_by"] == "default"
        _, served, _ = chat(_proxy(first), "hello")
        rewarded = control.post(REWARDS, json={"rollout_id": served, "reward": 1})
        assert rewarded.status_code == 201, rewarded.text
        _, later, _ = chat(_proxy(first), "rewarded after a restart")

        # another process on the same database sees the session, held by the first
        second = _service(tmp_path, url, "b")
        other = second.client(authorization="Bearer pg-control")
        [listed] = other.get("/online/sessions").json()["sessions"]
        assert listed["state"] == "unavailable" and "held by pid" in listed["error"]
        refused = httpx.post(
            f"{second.url}/online/sessions/shared/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer pg-proxy"},
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "session_unavailable"
        second.stop()
    finally:
        first.stop()
        if second is not None:
            second.stop()

    # once the holder is gone, the next process opens the session from its directory
    third = _service(tmp_path, url, "c")
    try:
        control = third.client(authorization="Bearer pg-control")
        info = control.get("/online/sessions/shared").json()
        assert (info["served"], info["rewards"]) == (2, 1)
        assert control.post(REWARDS, json={"rollout_id": later, "reward": 0}).status_code == 201
        assert chat(_proxy(third), "again")[1].startswith("r1-")
    finally:
        third.stop()
