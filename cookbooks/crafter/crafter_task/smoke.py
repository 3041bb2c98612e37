"""A greedy loop without the optimizer: does the offline mechanism learn?

One GEPA-like step at a time on the offline policy: play the current playbook on a
minibatch of train worlds, ask the offline proposer for a new playbook from those
episodes, keep it when the minibatch score improves. ``python -m crafter_task.smoke``
prints the seed's and the final playbook's mean scores on val and heldout.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .agent import OfflinePolicy
from .data import DEFAULT_MAX_STEPS, SPLITS, world_seed
from .episode import play_episode
from .propose import propose_text
from .seed import SEED_PLAYBOOK


def evaluate(
    instructions: str, split: str, seeds: Sequence[int], max_steps: int = DEFAULT_MAX_STEPS
) -> list[dict[str, Any]]:
    """One record per world, shaped like the reflective dataset the proposer gets."""
    records = []
    for seed in seeds:
        episode = asyncio.run(
            play_episode(
                world_seed(split, seed), max_steps, OfflinePolicy(instructions), lambda **_: None
            )
        )
        records.append(
            {
                "example_id": f"{split}:{seed}",
                "inputs": {"world_seed": world_seed(split, seed), "max_steps": max_steps},
                "output": episode.summary(),
                "score": episode.score,
                "feedback": episode.feedback(),
            }
        )
    return records


def mean_score(
    instructions: str, split: str, max_steps: int = DEFAULT_MAX_STEPS, limit: int | None = None
) -> float:
    records = evaluate(
        instructions, split, range(min(SPLITS[split], limit or SPLITS[split])), max_steps
    )
    return sum(r["score"] for r in records) / len(records)


@dataclass
class GreedyResult:
    best_text: str
    seed: dict[str, float]
    best: dict[str, float]
    accepted: int
    proposals: int


def greedy(
    minibatch_size: int = 4,
    proposals: int = 8,
    max_steps: int = DEFAULT_MAX_STEPS,
    eval_seeds: int | None = None,
) -> GreedyResult:
    """Seed vs final mean score on val and heldout (their first ``eval_seeds`` worlds)."""
    current = SEED_PLAYBOOK
    accepted = made = 0
    train = list(range(SPLITS["train"]))
    for i in range(proposals):
        start = (i * minibatch_size) % len(train)
        batch = [train[(start + j) % len(train)] for j in range(minibatch_size)]
        before = evaluate(current, "train", batch, max_steps)
        made += 1
        new = propose_text(current, before)
        if new == current:
            continue
        after = evaluate(new, "train", batch, max_steps)
        if sum(r["score"] for r in after) > sum(r["score"] for r in before):
            current, accepted = new, accepted + 1

    def scores(text: str) -> dict[str, float]:
        return {s: mean_score(text, s, max_steps, eval_seeds) for s in ("val", "heldout")}

    return GreedyResult(current, scores(SEED_PLAYBOOK), scores(current), accepted, made)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m crafter_task.smoke", description=__doc__)
    parser.add_argument("--proposals", type=int, default=8)
    parser.add_argument("--minibatch", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    args = parser.parse_args()
    result = greedy(args.minibatch, args.proposals, args.max_steps)
    print(f"{result.accepted} of {result.proposals} proposals kept")
    for split in ("val", "heldout"):
        print(f"{split}: seed {result.seed[split]:.3f} -> {result.best[split]:.3f}")
    print(result.best_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
