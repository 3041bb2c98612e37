"""A small client for the online control API, over httpx.

```python
from gepa_cli.online import OnlineClient

with OnlineClient("http://127.0.0.1:8879", api_key=os.environ["GEPA_SERVICE_KEY"]) as client:
    session = client.create(config_path="online.toml")
    proxy_url = client.proxy_base_url(session["session_id"])  # give this to openai.OpenAI
    client.reward(session["session_id"], rollout_id, 1.0, feedback="resolved")
    for event in client.follow(session["session_id"]):
        print(event["type"])
```

Every error answer becomes an `OnlineClientError` with the server's one-line message
(its ``error_code`` and HTTP status in ``details``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson

from gepa_cli.online.errors import OnlineClientError


class OnlineClient:
    def __init__(
        self, base_url: str, *, api_key: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_seconds)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OnlineClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def proxy_base_url(self, session_id: str) -> str:
        """The ``base_url`` to give an OpenAI client so its calls go through the session."""
        return f"{self.base_url}/online/sessions/{session_id}/v1"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OnlineClientError(
                f"cannot reach the service at {self.base_url}: {type(exc).__name__}: {exc}",
                hint="start it with `gepa-cli gepa service` or check --url",
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

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
        result: dict[str, Any] = self._call("POST", "/online/sessions", json=body)
        return result

    def sessions(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/online/sessions")["sessions"])

    def get(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/online/sessions/{session_id}")
        return result

    def state(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/online/sessions/{session_id}/state")
        return result

    def prompt(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/online/sessions/{session_id}/prompt")
        return result

    def candidates(self, session_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/online/sessions/{session_id}/candidates")["candidates"])

    def _control(self, session_id: str, action: str, **body: Any) -> dict[str, Any]:
        payload = {k: v for k, v in body.items() if v is not None}
        result: dict[str, Any] = self._call(
            "POST", f"/online/sessions/{session_id}/{action}", json=payload or None
        )
        return result

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
        result: dict[str, Any] = self._call(
            "POST",
            f"/online/sessions/{session_id}/rewards",
            content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            headers={"Content-Type": "application/json"},
        )
        return result

    # -- events -------------------------------------------------------------------------

    def events(
        self, session_id: str, *, after: int = -1, limit: int = 1000
    ) -> list[dict[str, Any]]:
        result = self._call(
            "GET", f"/online/sessions/{session_id}/events", params={"after": after, "limit": limit}
        )
        return list(result["events"])

    def follow(self, session_id: str, *, after: int = -1) -> Iterator[dict[str, Any]]:
        """Events as they happen (server-sent events), from seq ``after + 1``; reconnects
        resume where the last event seen left off."""
        last = after
        while True:
            headers = {"Last-Event-ID": str(last)} if last >= 0 else {}
            try:
                with self.http.stream(
                    "GET",
                    f"/online/sessions/{session_id}/events/stream",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error(response)
                    for line in response.iter_lines():
                        if line.startswith("data: "):
                            event = orjson.loads(line[6:])
                            last = int(event["seq"])
                            yield event
                        elif line.startswith("event: end"):
                            return
            except httpx.TransportError as exc:
                raise OnlineClientError(
                    f"the event stream of {session_id} broke: {type(exc).__name__}",
                    hint=f"follow again with after={last}",
                ) from None


def _error(response: httpx.Response) -> OnlineClientError:
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code, message = str(error.get("code")), str(error.get("message"))
    else:
        code, message = "http_error", response.text.strip()[:300] or response.reason_phrase
    return OnlineClientError(
        f"HTTP {response.status_code} {code}: {message}",
        status=response.status_code,
        code=code,
    )
