"""Rollout throughput against a container with a fixed per-rollout latency.

Runs the reference container (tests/support/reference_container.py) as a child
process with ``--latency`` seconds per rollout (an asyncio.sleep), then sends
``--rollouts`` rollouts through `ContainerEvaluator` at each concurrency level and
prints the wall time against the ideal ``n * latency / concurrency``: the median of
``--repeat`` measurements (a 2-core machine's scheduling moves one by several percent),
with the fastest and slowest.

    .venv/bin/python bench/rollout_throughput.py [--rollouts 2000] [--latency 0.05]
        [--concurrency 1 8 32 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from gepa_cli.config import ContainerConfig, GepaConfig, config_from_dict
from gepa_cli.engine.types import EvaluationRequest
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container import (
    ContainerClient,
    ContainerEvaluator,
    ContainerLauncher,
    handshake,
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "support" / "reference_container.py"
TRAIN_SIZE = 200  # the reference container's train split


def bench_config(url: str) -> GepaConfig:
    raw = {
        "container": {"url": url},
        "dataset": {"train_seeds": f"0:{TRAIN_SIZE}"},
        "proposer": {"command": ["cat"]},
        "gepa": {"max_total_rollouts": 1},
    }
    return config_from_dict(raw, base_dir=ROOT)


async def measure(url: str, rollouts: int, concurrency: int) -> tuple[float, int]:
    config = bench_config(url)
    client = ContainerClient(url, timeout_seconds=30, retries=0, max_concurrency=concurrency)
    async with client:
        shake = await handshake(config, client, NoCache())
        ids = shake.example_ids("train")
        # distinct candidates, so every rollout is a distinct request
        requests = [
            EvaluationRequest(f"c{i}", {"system_prompt": f"candidate {i}"}, ids, "train")
            for i in range(-(-rollouts // len(ids)))
        ]
        remaining = rollouts
        trimmed = []
        for request in requests:
            take = min(remaining, len(request.example_ids))
            trimmed.append(
                EvaluationRequest(
                    request.candidate_id, request.texts, request.example_ids[:take], "train"
                )
            )
            remaining -= take
        evaluator = ContainerEvaluator(shake, NoCache(), client)
        started = time.perf_counter()
        batches = await evaluator.evaluate_many(trimmed)
        wall = time.perf_counter() - started
    failed = sum(result.status != "completed" for batch in batches for result in batch)
    return wall, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per rollout")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--repeat", type=int, default=5, help="measurements per level")
    args = parser.parse_args()
    command = ["{python}", str(REFERENCE), "--port", "{port}", "--latency", str(args.latency)]
    config = ContainerConfig(command=command, startup_timeout_seconds=30)
    print(f"{args.rollouts} rollouts, {args.latency * 1000:g} ms latency each")
    print(
        f"{'concurrency':>11} {'wall s':>8} {'ideal s':>8} {'ratio':>6} "
        f"{'rollouts/s':>10} {'ratio range':>12}"
    )
    with tempfile.TemporaryDirectory() as logs:
        for concurrency in args.concurrency:
            walls, failed = [], 0
            for _ in range(args.repeat):
                # a fresh container each time: the test container keeps every request
                # body it served, and a heap grown by earlier runs slows the next one
                with ContainerLauncher(config, base_dir=ROOT, log_dir=Path(logs)) as url:
                    wall, lost = asyncio.run(measure(url, args.rollouts, concurrency))
                walls.append(wall)
                failed += lost
            wall = statistics.median(walls)
            ideal = args.rollouts * args.latency / concurrency
            note = f"  ({failed} failed)" if failed else ""
            spread = f"{min(walls) / ideal:.2f}-{max(walls) / ideal:.2f}"
            print(
                f"{concurrency:>11} {wall:>8.2f} {ideal:>8.2f} {wall / ideal:>6.2f} "
                f"{args.rollouts / wall:>10.1f} {spread:>12}{note}",
                flush=True,
            )


if __name__ == "__main__":
    main()
