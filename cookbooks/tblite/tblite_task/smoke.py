"""Evaluate playbooks without the optimizer: ``python -m tblite_task.smoke``.

Prints the seed playbook's pass rate per split, then runs a greedy loop (minibatches of
train tasks, keep a proposal when it passes more of the minibatch) with the offline
proposer and prints the rates of the result. A quick check that the agent, the
verifier and the proposer fit together, in a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from . import SEED_PLAYBOOK
from .episode import EpisodeResult, run_episode
from .propose import propose_text
from .sandbox import SandboxViolation
from .tasks import SPLITS, Task, split_tasks


class Quiet:
    """A step recorder that keeps nothing (the transcript is in the result)."""

    def step(self, **_kw: Any) -> None:
        return None

    def check(self) -> None:
        return None


async def evaluate(playbook: str, tasks: list[Task], concurrency: int = 4) -> list[Any]:
    sem = asyncio.Semaphore(concurrency)

    async def one(task: Task) -> EpisodeResult | SandboxViolation:
        async with sem:
            try:
                return await run_episode(playbook, task.row_fields(), "offline", Quiet())
            except SandboxViolation as exc:
                return exc

    return list(await asyncio.gather(*(one(t) for t in tasks)))


def rate(results: list[Any]) -> float:
    return sum(isinstance(r, EpisodeResult) and r.passed for r in results) / max(1, len(results))


def record(result: Any) -> dict[str, Any]:
    if not isinstance(result, EpisodeResult):
        return {"inputs": {}, "output": None, "score": 0.0, "feedback": str(result)}
    return {
        "inputs": result.task.row_fields(),
        "output": result.transcript(),
        "score": result.reward,
        "feedback": result.feedback(),
    }


async def greedy(playbook: str, rounds: int, batch: int) -> str:
    train = split_tasks("train")
    for i in range(rounds):
        mini = [train[(i * batch + j) % len(train)] for j in range(batch)]
        before = await evaluate(playbook, mini)
        new = propose_text(playbook, [record(r) for r in before])
        if new == playbook:
            continue
        after = await evaluate(new, mini)
        if rate(after) > rate(before):
            playbook = new
    return playbook


async def main_async(args: argparse.Namespace) -> None:
    for split in SPLITS:
        print(f"seed {split}: {rate(await evaluate(SEED_PLAYBOOK, split_tasks(split))):.3f}")
    best = await greedy(SEED_PLAYBOOK, args.rounds, args.batch)
    for split in SPLITS:
        print(f"after {split}: {rate(await evaluate(best, split_tasks(split))):.3f}")
    if args.show:
        print(best)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tblite_task.smoke")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--show", action="store_true", help="print the resulting playbook")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
