"""A small client for the online control API, over the service client's HTTP stack.

```python
from gepa_cli.online import OnlineClient

with OnlineClient("http://127.0.0.1:8879", api_key=os.environ["GEPA_SERVICE_KEY"]) as client:
    session = client.create(config_path="online.toml")
    proxy_url = client.proxy_base_url(session["session_id"])  # give this to openai.OpenAI
    client.reward(session["session_id"], rollout_id, 1.0, feedback="resolved")
    for event in client.follow(session["session_id"]):
        print(event["type"])
```

Requests, keys (``api_key`` or ``GEPA_CLI_SERVICE_KEY``), errors and event streams are
`gepa_cli.client.ServiceClient`'s: an error answer is a `ServiceRefusedError` (4xx) or
`ServiceFailedError` (5xx) with the server's error ``code`` and one-line message, no
answer at all a `ServiceUnreachableError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from gepa_cli.client import ServiceClient

PREFIX = "/online/sessions"


class OnlineClient:
    def __init__(
        self, base_url: str, *, api_key: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self.service = ServiceClient(base_url, api_key, timeout=timeout_seconds)
        self.base_url = self.service.url

    def close(self) -> None:
        self.service.close()

    def __enter__(self) -> OnlineClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def proxy_base_url(self, session_id: str) -> str:
        """The ``base_url`` to give an OpenAI client so its calls go through the session."""
        return f"{self.base_url}{PREFIX}/{session_id}/v1"

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.service._json(method, f"{PREFIX}{path}", **kwargs)

    # -- control ------------------------------------------------------------------------

    def create(
        self,
        *,
        config_path: str | Path | None = None,
        config_toml: str | None = None,
        base_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if config_path is not None:
            body["config_path"] = str(config_path)
        if config_toml is not None:
            body["config_toml"] = config_toml
        if base_dir is not None:
            body["base_dir"] = str(base_dir)
        return self._call("POST", "", json=body)

    def sessions(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "")["sessions"])

    def get(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{session_id}")

    def state(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{session_id}/state")

    def prompt(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{session_id}/prompt")

    def candidates(self, session_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/{session_id}/candidates")["candidates"])

    def _control(self, session_id: str, action: str, **body: Any) -> dict[str, Any]:
        payload = {k: v for k, v in body.items() if v is not None}
        return self._call("POST", f"/{session_id}/{action}", json=payload or None)

    def pause(self, session_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._control(session_id, "pause", reason=reason)

    def resume(self, session_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._control(session_id, "resume", reason=reason)

    def cancel(
        self, session_id: str, reason: str | None = None, serve: str | None = None
    ) -> dict[str, Any]:
        return self._control(session_id, "cancel", reason=reason, serve=serve)

    def reward(
        self,
        session_id: str,
        rollout_id: str,
        reward: float,
        *,
        feedback: str | None = None,
        objectives: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"rollout_id": rollout_id, "reward": reward}
        if feedback is not None:
            body["feedback"] = feedback
        if objectives:
            body["objectives"] = dict(objectives)
        return self._call(
            "POST",
            f"/{session_id}/rewards",
            content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            headers={"Content-Type": "application/json"},
        )

    # -- events -------------------------------------------------------------------------

    def events(
        self, session_id: str, *, after: int = -1, limit: int = 1000
    ) -> list[dict[str, Any]]:
        result = self._call("GET", f"/{session_id}/events", params={"after": after, "limit": limit})
        return list(result["events"])

    def follow(
        self, session_id: str, *, after: int = -1, reconnects: int = 5
    ) -> Iterator[dict[str, Any]]:
        """Events as they happen (server-sent events), from seq ``after + 1``; a dropped
        connection is reopened where the last event seen left off."""
        return self.service.follow(
            f"{PREFIX}/{session_id}/events/stream", after=after, reconnects=reconnects
        )
