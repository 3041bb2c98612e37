"""Online GEPA on Banking77, end to end, with no model and no key.

Starts the offline stand-in model (standin.py) and a gepa-cli service, creates the
session of ``online.toml`` (its upstream pointed at the stand-in), and drives Banking77
traffic through the proxy with the official ``openai`` SDK (drive.py), rewarding every
answer from its label. Served accuracy is printed per window of requests; with the
fixed seed the run is reproducible, because the driver waits for a reflection in flight
before its next request (a real application would not wait).

    python -m banking77_task.online_demo --requests 1500 --window 150    # from cookbooks/banking77
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai

from .data import load_default
from .drive import drive, rewards_url
from .standin import app as standin_app

COOKBOOK = Path(__file__).resolve().parents[1]
CONFIG = COOKBOOK / "online.toml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_standin(port: int) -> threading.Thread:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(standin_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the stand-in model did not start")
        time.sleep(0.02)
    return thread


def start_service(workdir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "gepa_cli.cli.main", "gepa", "service",
        "--db", str(workdir / "service.sqlite"), "--bind", f"127.0.0.1:{port}",
        "--workers", "0", "--output-dir", str(workdir / "runs"),
        "--allowed-root", str(COOKBOOK),
        "--api-key-env", "GEPA_DEMO_CONTROL_KEY", "--proxy-key-env", "GEPA_DEMO_PROXY_KEY",
    ]  # fmt: skip
    log = open(workdir / "service.log", "ab")  # noqa: SIM115 - the child writes to it
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=COOKBOOK)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited; see {workdir / 'service.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the service did not come up")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Online GEPA on Banking77, offline.")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--window", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="Where the service's db and the session's run directory go "
                             "(default: a new temporary directory).")  # fmt: skip
    args = parser.parse_args(argv)
    workdir = (args.output_dir or Path(tempfile.mkdtemp(prefix="banking77-online-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    control_key, proxy_key = secrets.token_hex(16), secrets.token_hex(16)
    env = {**os.environ, "GEPA_DEMO_CONTROL_KEY": control_key, "GEPA_DEMO_PROXY_KEY": proxy_key}
    standin_port, service_port = free_port(), free_port()
    serve_standin(standin_port)
    toml = re.sub(
        r'(?m)^base_url = ".*"$', f'base_url = "http://127.0.0.1:{standin_port}/v1"',
        CONFIG.read_text(encoding="utf-8"), count=1,
    )  # fmt: skip
    service = start_service(workdir, service_port, env)
    url = f"http://127.0.0.1:{service_port}"
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {control_key}"}, timeout=60
        ) as control:
            created = control.post(
                "/online/sessions", json={"config_toml": toml, "base_dir": str(COOKBOOK)}
            )
            created.raise_for_status()
            sid = created.json()["session_id"]
            base_url = f"{url}/online/sessions/{sid}/v1"

            def settle() -> None:
                while control.get(f"/online/sessions/{sid}").json()["reflection_in_flight"]:
                    time.sleep(0.02)

            data = load_default()
            print(
                f"Banking77 online demo: session {sid}, {args.requests} requests, seed {args.seed}"
            )
            client = openai.OpenAI(base_url=base_url, api_key=proxy_key, max_retries=2)
            with httpx.Client(headers={"Authorization": f"Bearer {proxy_key}"}, timeout=60) as rw:
                windows = drive(client, data.splits["train"], data.labels,
                                requests=args.requests, window=args.window, seed=args.seed,
                                model="banking77-standin", reward_client=rw,
                                reward_url=rewards_url(base_url), after_each=settle)  # fmt: skip
            info = control.get(f"/online/sessions/{sid}").json()
            first, last = windows[0].accuracy, windows[-1].accuracy
            print(
                f"  served accuracy: first window {100 * first:.1f}% -> last window "
                f"{100 * last:.1f}% ({100 * (last - first):+.1f} points)"
            )
            print(
                f"  session {info['state']}: best {info['incumbent_id']}, {info['proposals']} "
                f"proposals, {info['rewards']} rewards; run directory {info['run_dir']}"
            )
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
