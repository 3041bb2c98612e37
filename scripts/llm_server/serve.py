"""Running the server: start it on loopback, check it, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from .build import build_server, server_binary
from .common import ARGS_ENV, PORT_ENV, THREADS_ENV, LlmServerError, cache_root, last_error
from .model import MODEL_ALIAS, fetch_model

CHAT_TEMPLATE = Path(__file__).resolve().with_name("gemma3.jinja")
HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# One compute thread by default: llama.cpp's threads wait for each other at every step,
# so on a busy 2-core machine two threads ran 2 to 4 times slower than one (measured
# with bench/llm_prompt_cache.py at a load of 8). GEPA_CLI_LLM_THREADS=2 for a quiet one.
THREADS = 1
# four slots of 8k tokens: a classifier call is ~1k, a reflection prompt a few k
PARALLEL = 4
CONTEXT = 32768
STARTUP_SECONDS = 120.0


def state_file(root: Path | None = None) -> Path:
    return (root or cache_root()) / "server.json"


def log_file(root: Path | None = None) -> Path:
    return (root or cache_root()) / "server.log"


@dataclass(frozen=True)
class Server:
    """A llama-server process serving the model at ``url`` (the API root is ``url/v1``)."""

    url: str
    pid: int

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


def server_command(binary: Path, model: Path, port: int) -> list[str]:
    threads = os.environ.get(THREADS_ENV) or str(THREADS)
    return [
        str(binary),
        "--model",
        str(model),
        "--alias",
        MODEL_ALIAS,
        "--host",
        HOST,
        "--port",
        str(port),
        # Gemma 3's turn format from a file: the built-in "gemma" template name would
        # turn every prompt into the word "gemma"
        "--jinja",
        "--chat-template-file",
        str(CHAT_TEMPLATE),
        # a full-size cache for the sliding-window layers, so a prompt that shares its
        # start with the previous one (the same system prompt) is not re-read
        "--swa-full",
        "--threads",
        threads,
        "--threads-batch",
        threads,
        "--ctx-size",
        str(CONTEXT),
        "--parallel",
        str(PARALLEL),
        "--metrics",
        "--no-webui",
        *shlex.split(os.environ.get(ARGS_ENV, "")),
    ]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def launch(port: int, root: Path | None = None, log: Path | None = None) -> Server:
    """Start llama-server (fetching and building first if needed) and wait until it serves.

    The process gets its own session, so it outlives this one until `stop` is called.
    """
    if not port_is_free(port):
        raise LlmServerError(
            f"port {port} on {HOST} is taken; stop what listens there or choose another "
            f"with {PORT_ENV}"
        )
    model = fetch_model(root)
    binary = build_server(root)
    log = log or log_file(root)
    with log.open("w") as out:
        proc = subprocess.Popen(
            server_command(binary, model, port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://{HOST}:{port}", proc.pid)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not healthy(server.url):
        code = proc.poll()
        if code == -signal.SIGILL:
            raise LlmServerError(
                f"llama-server died of an illegal instruction: {binary} was built for "
                "another CPU; delete it and run `make llm-server` again to rebuild it here"
            )
        if code is not None:
            raise LlmServerError(
                f"llama-server exited with code {code} while starting: {last_error(log)}; "
                f"log: {log}"
            )
        if time.monotonic() > deadline:
            terminate(proc.pid)
            raise LlmServerError(
                f"llama-server did not answer /health within {STARTUP_SECONDS:.0f} s; log: {log}"
            )
        time.sleep(0.25)
    try:
        check_template(server.url)
    except LlmServerError:
        terminate(proc.pid)
        raise
    return server


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def check_template(url: str) -> None:
    """The system message must reach the prompt: it is the text GEPA optimizes."""
    messages = [
        {"role": "system", "content": "SYSTEM-MARK"},
        {"role": "user", "content": "USER-MARK"},
    ]
    try:
        resp = httpx.post(url + "/apply-template", json={"messages": messages}, timeout=10.0)
        prompt = resp.json()["prompt"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise LlmServerError(f"cannot render the chat template at {url}: {exc}") from None
    if not re.search(r"<start_of_turn>user\nSYSTEM-MARK\n\nUSER-MARK<end_of_turn>", prompt):
        raise LlmServerError(
            f"the server's chat template renders {prompt[:120]!r}, without the system "
            f"message in Gemma's user turn; check {CHAT_TEMPLATE}"
        )


def metrics(url: str) -> dict[str, float]:
    """The server's own counters from /metrics (`llamacpp:` prefix dropped)."""
    resp = httpx.get(url + "/metrics", timeout=5.0)
    resp.raise_for_status()
    out: dict[str, float] = {}
    for line in resp.text.splitlines():
        if line.startswith("llamacpp:"):
            name, _, value = line.partition(" ")
            out[name.removeprefix("llamacpp:")] = float(value)
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int, binary: Path) -> bool:
    """Guard against a recycled pid: only signal a process running our binary."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0] == str(binary).encode()


def terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def read_state(root: Path | None = None) -> Server | None:
    path = state_file(root)
    try:
        data = json.loads(path.read_text())
        server = Server(str(data["url"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(server.pid) or not _is_our_server(server.pid, server_binary(root)):
        path.unlink(missing_ok=True)
        return None
    return server


def running(root: Path | None = None) -> Server | None:
    """The server `start` left running, when it still answers."""
    server = read_state(root)
    return server if server is not None and healthy(server.url) else None


def start(port: int, root: Path | None = None) -> Server:
    current = read_state(root)
    if current is not None:
        return current
    server = launch(port, root)
    state_file(root).write_text(json.dumps({"url": server.url, "pid": server.pid}) + "\n")
    return server


def stop(root: Path | None = None) -> Server | None:
    server = read_state(root)
    if server is not None:
        terminate(server.pid)
    state_file(root).unlink(missing_ok=True)
    return server


@contextlib.contextmanager
def serving(port: int | None = None, root: Path | None = None) -> Iterator[Server]:
    """The running server when there is one; otherwise one started here and stopped after."""
    current = running(root)
    if current is not None:
        yield current
        return
    server = launch(port or free_port(), root, log=(root or cache_root()) / "server-test.log")
    try:
        yield server
    finally:
        terminate(server.pid)
