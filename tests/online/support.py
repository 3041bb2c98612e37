"""A service with online sessions in this process (uvicorn on 127.0.0.1, its own thread),
a local chat upstream, and session configs for them."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

from gepa_cli.online.routes import online_router, proxy_keys
from gepa_cli.service.app import create_app
from gepa_cli.service.keys import KeyRing, digest
from gepa_cli.service.submit import ServiceSettings
from service.support import free_port
from support.chat_upstream import ThreadServer

CONTROL_KEY = "control-key-for-tests"
PROXY_KEY = "proxy-key-for-tests"
UPSTREAM_KEY_ENV = "GEPA_TEST_UPSTREAM_KEY"
UPSTREAM_KEY = "upstream-secret-for-tests"

# A proposer that appends a sentence: every proposal is new, and the test upstream
# echoes the system message, so a test sees which candidate answered.
PROPOSER = """\
import json, sys
request = json.load(sys.stdin)
print("```\\n" + request["current_text"] + " Answer briefly.\\n```")
"""


def session_toml(
    upstream_url: str,
    session_id: str,
    *,
    online: dict[str, Any] | None = None,
    seed: dict[str, str] | None = None,
    gepa: str = "max_proposals = 3",
) -> str:
    seed = seed or {"system_prompt": "You are a helpful assistant."}
    seed_lines = "\n".join(f"{k} = {v!r}" for k, v in seed.items()).replace("'", '"')
    online_lines = "\n".join(
        f"{k} = {v!r}".replace("'", '"') for k, v in {
            "reflection_minibatch": 3, "min_rewards": 5, "max_rewards": 40, **(online or {})
        }.items()
    )  # fmt: skip
    return textwrap.dedent(
        f"""\
        [run]
        run_id = "{session_id}"

        [upstream]
        base_url = "{upstream_url}/v1"
        model = "test-model"
        api_key_env = "{UPSTREAM_KEY_ENV}"

        [seed_candidate]
        {seed_lines}

        [proposer]
        backend = "command"
        command = ["{{python}}", "propose.py"]
        input = "json"

        [gepa]
        {gepa}

        [online]
        {online_lines}
        """
    )


class OnlineService:
    """The run service with the online routes, in this process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "propose.py").write_text(PROPOSER)
        settings = ServiceSettings(
            db=str(root / "service.sqlite"),
            output_dir=root / "runs",
            allowed_roots=(root.resolve(),),
            workers=0,
            keys=KeyRing((("tester", digest(CONTROL_KEY)),)),
            keepalive_seconds=1.0,
            data_dir=root / "service-data",
        )
        proxy = proxy_keys("GEPA_TEST_PROXY_KEY", settings.keys, {"GEPA_TEST_PROXY_KEY": PROXY_KEY})
        app = create_app(settings, start_workers=False, routers=[online_router(settings, proxy)])
        self.server = ThreadServer(app, free_port())
        self.url = self.server.url

    def control(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {CONTROL_KEY}"}, timeout=10
        )

    def openai(self, session_id: str, key: str = PROXY_KEY) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/online/sessions/{session_id}/v1", api_key=key, max_retries=0
        )

    def create(self, toml: str) -> dict[str, Any]:
        with self.control() as client:
            response = client.post("/online/sessions", json={"config_toml": toml})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def run_dir(self, session_id: str) -> Path:
        return self.root / "runs" / session_id


@contextmanager
def online_service(root: Path) -> Iterator[OnlineService]:
    service = OnlineService(root)
    service.server.start()
    try:
        yield service
    finally:
        service.server.stop()


def chat(client: openai.OpenAI, text: str, **kwargs: Any) -> tuple[str, str, str]:
    """(answer, rollout id, candidate id) of one plain call."""
    raw = client.chat.completions.with_raw_response.create(
        model="caller-model", messages=[{"role": "user", "content": text}], **kwargs
    )
    answer = raw.parse().choices[0].message.content or ""
    return answer, raw.headers["x-gepa-rollout-id"], raw.headers["x-gepa-candidate-id"]
