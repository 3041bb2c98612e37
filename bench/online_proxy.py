"""The online proxy's cost: added latency, throughput, restart time and memory.

In one run, against one local zero-latency OpenAI-compatible upstream (a child process):

1. latency of a chat completion sent to the upstream directly and through a session's
   proxy (`gepa-cli gepa service`, a child process), at 1 client (one call after the
   other) and at 32 concurrent clients offering ``--rate`` calls/s in all (200, the
   throughput goal): p50 and p99 of each, and what the proxy adds (proxied minus direct);
2. proxied calls per second at 32 clients sending as fast as they are answered, next to
   the upstream's own rate;
3. a session holding ``--rollouts`` recorded rollouts (half of them rewarded, written by
   the session's own code, as traffic would): the time from starting the service to the
   session answering, and the service's resident memory, next to the same for a session
   holding a tenth as many (memory must not grow with the rollouts on disk); once with
   the hot index in place and once with it deleted (rebuilt from the ledgers).

Goals (a 2-core machine): at most 10 ms added at p50, at least 200 calls/s, a restart
under 10 s, and memory flat in the number of rollouts.

    .venv/bin/python bench/online_proxy.py [--requests 2000] [--rollouts 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
CONTROL_KEY, PROXY_KEY = "bench-control", "bench-proxy"
COMPLETION = orjson.dumps(
    {
        "id": "bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
)
BODY = orjson.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "How do I reset my card PIN?"}]}
)
SESSION_TOML = """\
[run]
run_id = "{sid}"
[upstream]
base_url = "{upstream}/v1"
[seed_candidate]
system_prompt = "You are the support assistant of an online bank. Answer briefly."
[proposer]
backend = "command"
command = ["{{python}}", "-c", "print('never called')"]
[gepa]
max_proposals = 1
[online]
reflection_minibatch = 200
"""


# -- the zero-latency upstream (this file, run with --upstream PORT) -----------------------


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": COMPLETION})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Seconds until ``url`` answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2, headers=_control()).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not come up")


def _control() -> dict[str, str]:
    return {"Authorization": f"Bearer {CONTROL_KEY}"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_service(work: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_CONTROL": CONTROL_KEY, "BENCH_PROXY": PROXY_KEY}
    argv = [
        sys.executable, "-m", "gepa_cli.cli.main", "gepa", "service",
        "--db", str(work / "service.sqlite"), "--bind", f"127.0.0.1:{port}",
        "--workers", "0", "--output-dir", str(work / "runs"), "--allowed-root", str(work),
        "--api-key-env", "BENCH_CONTROL", "--proxy-key-env", "BENCH_PROXY",
    ]  # fmt: skip
    log = open(work / "service.log", "ab")  # noqa: SIM115 - the child writes to it
    return subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=work)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


# -- latency and throughput --------------------------------------------------------------


async def load(
    url: str, key: str, requests: int, clients: int, rate: float | None = None
) -> tuple[list[float], float]:
    """Per-call latencies (ms) and the wall time of ``requests`` calls from ``clients``:
    each client sends its next call when its last one is answered, or, with ``rate``,
    at its slot of an even schedule of ``rate`` calls per second overall (so latency is
    measured at that load, not at saturation)."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    # aiohttp: httpx's pool would cost the load generator about 1.4 ms of CPU per call
    # at 32 clients, taken from the same two cores as the service it measures
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=timeout
    ) as client:

        async def call() -> None:
            started = time.perf_counter()
            async with client.post(url, data=BODY) as response:
                text = await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{url}: HTTP {response.status} {text[:200]!r}")

        async def worker(index: int, count: int, start: float) -> None:
            for k in range(count):
                if rate is not None:
                    delay = start + (k * clients + index) / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await call()

        await asyncio.gather(*(worker(i, 5, time.perf_counter()) for i in range(clients)))
        latencies.clear()  # the pools are warm
        per_client = max(1, requests // clients)
        started = time.perf_counter()
        await asyncio.gather(*(worker(i, per_client, started) for i in range(clients)))
        wall = time.perf_counter() - started
    return latencies, wall


def run(coro: Any) -> Any:
    """asyncio.run on uvloop when it is installed: the load generator must not be the
    bottleneck it measures."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)
    return uvloop.run(coro)


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- a session with many rollouts, written by the session's own code ------------------------


async def fill_session(work: Path, upstream: str, sid: str, rollouts: int) -> None:
    from gepa_cli.engine.types import Usage
    from gepa_cli.online.manager import SessionManager
    from gepa_cli.service.queue import RunQueue
    from gepa_cli.service.submit import ServiceSettings

    settings = ServiceSettings(
        db=str(work / "service.sqlite"),
        output_dir=work / "runs",
        allowed_roots=(work,),
        data_dir=work / "service-data",
    )
    queue = RunQueue.open(settings.db)  # the service's database, migrated
    manager = SessionManager(settings, queue.db)
    session = manager.create(
        {"config_toml": SESSION_TOML.format(sid=sid, upstream=upstream), "base_dir": str(work)}
    )
    await session.pause("bench: record traffic without learning")
    messages = [{"role": "user", "content": "How do I reset my card PIN?"}]
    batch: list[Any] = []
    for index in range(rollouts):
        route = session.route()
        session.record_served(
            route,
            status="completed",
            inputs={"messages": messages, "model": "bench"},
            answer="ok",
            usage=Usage(12, 1, 0.0, cost_known=False),
            latency_ms=1.0,
            stream=False,
        )
        if index % 2 == 0:
            batch.append(session.reward(route.rollout_id, float(index % 4 == 0), "bench"))
        if len(batch) >= 1000:
            await asyncio.gather(*batch)
            batch.clear()
    await asyncio.gather(*batch)
    await manager.stop()
    queue.close()


def open_seconds(work: Path, sid: str, *, cold: bool) -> float:
    """Seconds `Session.open` takes in this process (the part of a restart that depends
    on the session; the rest is the service starting)."""
    from gepa_cli.online.session import Session

    index = work / "service-data" / "online" / f"{sid}.index.sqlite"
    if cold:
        for path in index.parent.glob(f"{sid}.index.sqlite*"):
            path.unlink()
    started = time.perf_counter()
    session = Session.open(work / "runs" / sid, index)
    seconds = time.perf_counter() - started
    session._snapshot_at = 0.0
    session.log.fsync_now()  # keeps the snapshot current, as a service's close would
    session.log.close()
    session.index.close()
    session.lock.release()
    return seconds


def restart(work: Path, sid: str, *, cold: bool) -> tuple[float, float]:
    """(seconds from spawn to the session answering, resident MB) of a fresh service."""
    if cold:
        for path in (work / "service-data" / "online").glob(f"{sid}.index.sqlite*"):
            path.unlink()
    port = free_port()
    process = start_service(work, port)
    try:
        seconds = wait_up(f"http://127.0.0.1:{port}/online/sessions/{sid}", process)
        time.sleep(0.5)
        return seconds, rss_mb(process.pid)
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per latency run")
    parser.add_argument("--rollouts", type=int, default=100_000, help="rollouts in the big session")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="calls/s offered by the 32 clients (latency)"
    )
    parser.add_argument("--upstream", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream is not None:
        import uvicorn

        uvicorn.run(
            upstream_app,
            host="127.0.0.1",
            port=args.upstream,
            log_level="warning",
            timeout_keep_alive=60,
            backlog=4096,
        )
        return

    work = Path(tempfile.mkdtemp(prefix="online-bench-"))
    up_port, port = free_port(), free_port()
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--upstream", str(up_port)], stdout=subprocess.DEVNULL
    )
    service = start_service(work, port)
    try:
        up_url = f"http://127.0.0.1:{up_port}"
        wait_up(f"http://127.0.0.1:{port}/health", service)
        for _ in range(200):
            try:
                httpx.post(f"{up_url}/v1/chat/completions", content=BODY, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        toml = SESSION_TOML.format(sid="latency", upstream=up_url)
        created = httpx.post(
            f"http://127.0.0.1:{port}/online/sessions",
            json={"config_toml": toml, "base_dir": str(work)},
            headers=_control(),
            timeout=30,
        )
        created.raise_for_status()
        direct_url = f"{up_url}/v1/chat/completions"
        proxy_url = f"http://127.0.0.1:{port}/online/sessions/latency/v1/chat/completions"
        rows = []
        load_before = os.getloadavg()[0]
        # latency at 1 client, and at 32 clients offered --rate calls/s in all
        for clients, rate in ((1, None), (32, args.rate)):
            n = args.requests if clients > 1 else max(200, args.requests // 4)
            direct, _ = run(load(direct_url, "none", n, clients, rate))
            proxied, _ = run(load(proxy_url, PROXY_KEY, n, clients, rate))
            rows.append((clients, rate, n, direct, proxied))
        # throughput: 32 clients as fast as answers come
        up_cpu = cpu_seconds(upstream.pid)
        saturated_direct, direct_wall = run(load(direct_url, "none", args.requests, 32))
        up_cpu = cpu_seconds(upstream.pid) - up_cpu
        proxy_cpu = cpu_seconds(service.pid)
        saturated, proxied_wall = run(load(proxy_url, PROXY_KEY, args.requests, 32))
        proxy_cpu = cpu_seconds(service.pid) - proxy_cpu
    finally:
        stop(service)
        stop(upstream)
    load_after = os.getloadavg()[0]

    # the machine is shared: its load says how much of the two cores the run had
    print(f"load average (1 min) before / after the runs: {load_before:.2f} / {load_after:.2f}\n")
    print("## Latency added by the proxy (ms)\n")
    print(
        "| clients | offered calls/s | calls | direct p50 | direct p99 | proxied p50 "
        "| proxied p99 | added p50 | added p99 |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for clients, rate, n, direct, proxied in rows:
        d50, d99, p50, p99 = pct(direct, 50), pct(direct, 99), pct(proxied, 50), pct(proxied, 99)
        offered = f"{rate:g}" if rate else "closed loop"
        print(
            f"| {clients} | {offered} | {n} | {d50:.2f} | {d99:.2f} | {p50:.2f} | {p99:.2f} | "
            f"{p50 - d50:.2f} | {p99 - d99:.2f} |"
        )
    direct_rate, proxied_rate = args.requests / direct_wall, args.requests / proxied_wall
    # CPU per call says what a busy machine's wall times cannot: one core serves the
    # proxy (one event loop), so 1000 / (proxy CPU ms per call) bounds its calls/s
    n = args.requests - args.requests % 32
    proxy_ms, upstream_ms = 1000 * proxy_cpu / n, 1000 * up_cpu / n
    print(
        f"\nthroughput at 32 clients: proxied {proxied_rate:.0f} calls/s, direct "
        f"{direct_rate:.0f} calls/s (ratio {proxied_rate / direct_rate:.2f}); CPU per call: "
        f"service {proxy_ms:.2f} ms (at most {1000 / proxy_ms:.0f} calls/s on one core), "
        f"upstream {upstream_ms:.2f} ms; at {args.rate:g} calls/s offered the service is "
        f"busy {args.rate * proxy_ms / 1000:.0%} of one core (the rest of the 32-client latency "
        "is queueing for the shared cores, which the direct row sees too)"
    )
    print(
        f"latency p50 at saturation (32 clients as fast as answered, queueing included): "
        f"proxied {pct(saturated, 50):.2f} ms, direct {pct(saturated_direct, 50):.2f} ms"
    )
    added1 = pct(rows[0][4], 50) - pct(rows[0][3], 50)
    added32 = pct(rows[1][4], 50) - pct(rows[1][3], 50)
    print(
        f"goals: added p50 at 1 client {added1:.2f} ms / 10 ms = {added1 / 10:.2f}; "
        f"at 32 clients {added32:.2f} ms / 10 ms = {added32 / 10:.2f}; "
        f"proxied calls/s at 32 clients {proxied_rate:.0f} / 200 = {proxied_rate / 200:.2f}"
    )

    print("\n## A session with recorded rollouts: restart time and memory\n")
    print(
        "| rollouts on disk | events.jsonl MB | index | Session.open s | service restart s "
        "| service RSS MB |"
    )
    print("|---:|---:|---|---:|---:|---:|")
    results = {}
    for count in (args.rollouts // 10, args.rollouts):
        big = Path(tempfile.mkdtemp(prefix="online-bench-big-"))
        upstream_url = "http://127.0.0.1:9"  # never called: the session only restarts
        asyncio.run(fill_session(big, upstream_url, "big", count))
        size = (big / "runs" / "big" / "events.jsonl").stat().st_size / 1e6
        for cold in (False, True):
            opened = open_seconds(big, "big", cold=cold)
            seconds, rss = restart(big, "big", cold=cold)
            results[(count, cold)] = (seconds, rss)
            index = "rebuilt from ledgers" if cold else "in place"
            print(f"| {count} | {size:.1f} | {index} | {opened:.2f} | {seconds:.2f} | {rss:.1f} |")
        shutil.rmtree(big, ignore_errors=True)
    small, large = args.rollouts // 10, args.rollouts
    warm = results[(large, False)][0]
    growth = results[(large, False)][1] / results[(small, False)][1]
    print(
        f"\ngoals: restart {warm:.2f} s / 10 s = {warm / 10:.2f} (cold "
        f"{results[(large, True)][0]:.2f} s); RSS with {large} rollouts / with {small} = "
        f"{growth:.2f} (flat is 1.00)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
