"""`ServiceClient`: the run service over HTTP, from anywhere that reaches it.

    from gepa_cli.client import ServiceClient

    with ServiceClient("http://svc:8879", api_key="...") as svc:
        run = svc.submit(Path("gepa.toml"), base_dir="tasks/banking77")
        for event in svc.events(run["request_id"]):   # resumes after a dropped connection
            print(event["seq"], event["type"])
        best = svc.artifact(run["request_id"])["best_candidate"]["texts"]

The URL and key default to GEPA_CLI_SERVICE_URL and GEPA_CLI_SERVICE_KEY. A run is
named by its request id or its run id everywhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson

from gepa_cli.client.errors import (
    ServiceFailedError,
    ServiceRefusedError,
    ServiceRequestError,
    ServiceUnreachableError,
    WaitTimeoutError,
)
from gepa_cli.client.sse import messages
from gepa_cli.errors import ConfigError

URL_ENV = "GEPA_CLI_SERVICE_URL"
KEY_ENV = "GEPA_CLI_SERVICE_KEY"
# statuses after which a run does nothing more until someone acts
SETTLED = ("succeeded", "failed", "cancelled", "paused")
# waits between reconnects of an event stream that dropped without progress
BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text.strip()[:200] or response.reason_phrase
    kind: type[ServiceRequestError] = (
        ServiceRefusedError if response.status_code < 500 else ServiceFailedError
    )
    raise kind(
        f"{response.request.method} {response.request.url.path}: {response.status_code} {message}",
        status=response.status_code,
        code=code,
    )


class ServiceClient:
    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        url = url or environ.get(URL_ENV)
        if not url:
            raise ConfigError("no service URL", hint=f"pass --url (or url=...) or set {URL_ENV}")
        api_key = api_key or environ.get(KEY_ENV) or None
        headers = {"X-API-Key": api_key} if api_key else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnreachableError(
                f"{method} {self.url}{path}: no answer ({type(exc).__name__}: {exc})",
                hint="check the URL and that the service is running",
            ) from None
        if response.status_code not in allow:
            _raise_for(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._send(method, path, **kwargs).json()
        return body

    # -- the service ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        # a 503 (the database is gone) still carries the health body
        body: dict[str, Any] = self._send("GET", "/health", allow=(503,)).json()
        return body

    def queue(self, stale_seconds: float | None = None) -> dict[str, Any]:
        params = {"stale_seconds": stale_seconds} if stale_seconds else {}
        return self._json("GET", "/queue", params=params)

    def status(self) -> dict[str, Any]:
        return self._json("GET", "/status")

    def metrics(self) -> str:
        return self._send("GET", "/metrics").text

    def workspace(self) -> dict[str, Any]:
        return self._json("GET", "/workspace")

    # -- runs -------------------------------------------------------------------------

    def submit(
        self,
        config: Path | str | None = None,
        *,
        text: str | None = None,
        server_path: str | None = None,
        base_dir: str | None = None,
        priority: int = 0,
        paused: bool = False,
    ) -> dict[str, Any]:
        """Queue a run. ``config`` is a local file whose text is sent; ``text`` is the
        TOML itself; ``server_path`` is a file on the service's side. ``base_dir`` is
        where the config's relative paths resolve on the service's side."""
        if sum(x is not None for x in (config, text, server_path)) != 1:
            raise ConfigError("give exactly one of a config file, its text, or a server path")
        body: dict[str, Any] = {"priority": priority, "auto_start": not paused}
        if server_path is not None:
            body["config_path"] = server_path
        else:
            if config is not None:
                try:
                    text = Path(config).read_text(encoding="utf-8")
                except OSError as exc:
                    raise ConfigError(f"cannot read {config}: {exc.strerror}") from None
            body["config_toml"] = text
            body["base_dir"] = base_dir
        return self._json("POST", "/runs", json=body)

    def runs(
        self,
        *,
        status: str | None = None,
        client: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        params.update({k: v for k, v in (("status", status), ("client", client)) if v})
        return self._json("GET", "/runs", params=params)

    def iter_runs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every run matching the filters, page after page."""
        offset = 0
        while True:
            page = self.runs(offset=offset, limit=200, **filters)
            yield from page["runs"]
            offset += len(page["runs"])
            if not page["runs"] or offset >= page["total"]:
                return

    def get(self, run: str) -> dict[str, Any]:
        return self._json("GET", f"/runs/{run}")

    def summary(self, run: str) -> dict[str, Any]:
        return self._json("GET", f"/runs/{run}/summary")

    def artifact(self, run: str) -> dict[str, Any]:
        return self._json("GET", f"/runs/{run}/artifact")

    def candidates(self, run: str, *, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        return self._json(
            "GET", f"/runs/{run}/candidates", params={"limit": limit, "offset": offset}
        )

    def history(self, run: str) -> dict[str, Any]:
        return self._json("GET", f"/runs/{run}/history")

    def logs(self, run: str, *, stream: str = "stderr", tail: int | None = None) -> str:
        params: dict[str, Any] = {"stream": stream}
        if tail is not None:
            params["tail"] = tail
        return self._send("GET", f"/runs/{run}/logs", params=params).text

    def follow_logs(
        self, run: str, *, stream: str = "stderr", tail: int | None = None
    ) -> Iterator[str]:
        """The log as it grows, until the run stops."""
        params: dict[str, Any] = {"stream": stream, "follow": True}
        if tail is not None:
            params["tail"] = tail
        path = f"/runs/{run}/logs"
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise ServiceUnreachableError(
                f"GET {self.url}{path}: the log stream broke ({type(exc).__name__})",
                hint="follow it again with tail to see what you missed",
            ) from None

    def pause(self, run: str, reason: str | None = None) -> dict[str, Any]:
        return self._json("POST", f"/runs/{run}/pause", json={"reason": reason})

    def resume(self, run: str) -> dict[str, Any]:
        return self._json("POST", f"/runs/{run}/resume", json={})

    def cancel(self, run: str, reason: str | None = None) -> dict[str, Any]:
        return self._json("POST", f"/runs/{run}/cancel", json={"reason": reason})

    def delete(self, run: str, *, purge: bool = False) -> dict[str, Any]:
        return self._json("DELETE", f"/runs/{run}", params={"purge": purge})

    def wait(
        self, run: str, *, timeout: float | None = None, poll_seconds: float = 1.0
    ) -> dict[str, Any]:
        """The run once it settled (succeeded, failed, cancelled or paused)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.get(run)
            if current["status"] in SETTLED:
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"run {run} is still {current['status']} after {timeout:g}s",
                    hint="wait longer, or follow its events",
                )
            time.sleep(poll_seconds)

    def events(self, run: str, *, after: int = -1, reconnects: int = 5) -> Iterator[dict[str, Any]]:
        """Every event of the run after seq ``after``, in order, until the run settles.

        A connection that drops (or a service process that shuts down) is reopened with
        ``Last-Event-ID``, so no event is missed or repeated; ``reconnects`` tries in a
        row without a new event are allowed before giving up."""
        return self.follow(f"/runs/{run}/events", after=after, reconnects=reconnects)

    def follow(
        self, path: str, *, after: int = -1, reconnects: int = 5
    ) -> Iterator[dict[str, Any]]:
        """The events of the service's event stream at ``path`` (a run's, an online
        session's), as `events` describes."""
        last, failures = after, 0
        while True:
            headers = {"Last-Event-ID": str(last)} if last >= 0 else {}
            progressed = False
            try:
                with self.http.stream("GET", path, headers=headers, timeout=None) as response:
                    if not response.is_success:
                        response.read()
                        _raise_for(response)
                    for message in messages(response.iter_lines()):
                        if message.event == "end":
                            return
                        if message.event != "run_event":
                            continue
                        event: dict[str, Any] = orjson.loads(message.data)
                        if int(event["seq"]) <= last:
                            continue
                        last, progressed = int(event["seq"]), True
                        yield event
            except httpx.TransportError as exc:
                broke: Exception = exc
            else:
                broke = ConnectionError("the stream ended without its end event")
            failures = 0 if progressed else failures + 1
            if failures > reconnects:
                raise ServiceUnreachableError(
                    f"GET {self.url}{path}: the event stream broke {failures} times in a row "
                    f"({type(broke).__name__}); last event seen: {last}",
                    hint="follow it again later with after=<last seq>",
                )
            time.sleep(BACKOFF[min(failures, len(BACKOFF)) - 1] if failures else 0.05)
