"""A real service in a subprocess, and small task directories for it to run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from support.task_dir import config_sections, config_toml, make_task_dir


def service_sections(namespace: str, *, rollouts: int = 40) -> dict[str, dict[str, Any]]:
    """The sample task, smaller: a service test runs many of these."""
    return config_sections(
        dataset={"val_seeds": "100:106", "heldout_seeds": "0:4"},
        gepa={"max_total_rollouts": rollouts},
        cache={"namespace": namespace},
    )


def config_text(namespace: str, *, rollouts: int = 40, slow: bool = False) -> str:
    """``slow``: served by the task folder's slow container (make_task with a latency),
    so a test can act on the run while it is busy."""
    sections = service_sections(namespace, rollouts=rollouts)
    if slow:
        sections["container"] = {"app": "slow_container:app"}
    return config_toml(sections)


def make_task(
    root: Path,
    name: str,
    namespace: str,
    *,
    latency: float = 0.0,
    rollouts: int = 40,
    container_url: str | None = None,
) -> Path:
    """A directory with the container, the proposer and gepa.toml; returns the config.
    ``container_url``: run on that container (see `served_containers`) instead."""
    sections = service_sections(namespace, rollouts=rollouts)
    if latency:
        sections["container"] = {"app": "slow_container:app"}
    if container_url:
        sections["container"] = {"app": None, "url": container_url}
    return make_task_dir(root / name, latency=latency, **sections)


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], exited: Callable[[], str], timeout: float = 20
) -> None:
    """Until ``url``/health answers 200; ``exited`` says why when ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(exited())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {timeout:g} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``gepa-cli gepa service`` as a child process on a free port."""

    def __init__(
        self,
        root: Path,
        *args: str,
        env: dict[str, str] | None = None,
        db: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        """``root`` holds the tasks and the shared runs; ``db`` defaults to a SQLite file
        in it; ``cwd`` is the process's own working directory (default: ``root``)."""
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.db = db or str(root / "service.sqlite")
        self.cwd = cwd or root
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.cwd / f"service-{self.port}.log"

    def start(self) -> Service:
        argv = [
            sys.executable, "-m", "gepa_cli.cli.main", "gepa", "service",
            "--db", self.db,
            "--bind", f"127.0.0.1:{self.port}",
            "--output-dir", str(self.root / "runs"),
            "--allowed-root", str(self.root),
            *self.args,
        ]  # fmt: skip
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stderr=log, stdout=log)
        wait_healthy(self.url, self.proc, lambda: f"service exited: {self.log.read_text()}")
        return self

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM: the graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def served_containers(count: int, latency: float) -> Iterator[list[str]]:
    """``count`` reference containers, each in its own process: a test with many runs
    spares each run from starting an in-process container of its own."""
    script = Path(__file__).resolve().parents[1] / "support" / "reference_container.py"
    ports = [free_port() for _ in range(count)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "--port", str(port), "--latency", str(latency)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            wait_healthy(url, proc, lambda url=url: f"the container for {url} exited")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@contextmanager
def running_service(root: Path, *args: str, **kwargs: Any) -> Iterator[Service]:
    service = Service(root, *args, **kwargs).start()
    try:
        yield service
    finally:
        service.stop()


def wait_for(client: httpx.Client, request_id: str, statuses: tuple[str, ...], timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/runs/{request_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} not {statuses} after {timeout}s: {body}")


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    return dict(orjson.loads((Path(run_dir) / "manifest.json").read_bytes()))
