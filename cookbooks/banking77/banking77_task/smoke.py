"""A greedy optimization loop without the optimizer: does the offline mechanism learn?

It mimics one GEPA step at a time on the offline policy: evaluate the current prompt on a
minibatch of train examples, ask the offline proposer for a new prompt from that
minibatch's results, and keep the new prompt when the minibatch score improves.
``python -m banking77_task.smoke`` prints seed vs final accuracy on val and heldout.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .data import Banking77Data, Example, load_default
from .guidance import seed_prompt
from .policy import offline_classify, reward_info
from .propose import propose_text


def evaluate(
    prompt: str, examples: Sequence[Example], labels: Sequence[str]
) -> list[dict[str, Any]]:
    records = []
    for i, ex in enumerate(examples):
        predicted, _ = offline_classify(prompt, ex.text, labels)
        info = reward_info(predicted, ex.label, ex.text)
        records.append(
            {
                "example_id": f"ex:{i}",
                "inputs": {"query": ex.text, "label": ex.label},
                "output": predicted,
                "score": info["outcome_reward"],
                "feedback": info["feedback"],
            }
        )
    return records


def accuracy(prompt: str, examples: Sequence[Example], labels: Sequence[str]) -> float:
    records = evaluate(prompt, examples, labels)
    return float(sum(r["score"] for r in records)) / max(1, len(records))


@dataclass
class GreedyResult:
    seed_prompt: str
    best_prompt: str
    seed: dict[str, float]
    best: dict[str, float]
    accepted: int
    proposals: int


def greedy(data: Banking77Data, minibatch_size: int = 3, epochs: int = 2) -> GreedyResult:
    labels = data.labels
    seed = seed_prompt(labels)
    current = seed
    train = data.splits["train"]
    accepted = proposals = 0
    for _ in range(epochs):
        for start in range(0, len(train), minibatch_size):
            batch = train[start : start + minibatch_size]
            before = evaluate(current, batch, labels)
            if all(r["score"] >= 1.0 for r in before):
                continue
            proposals += 1
            new = propose_text(current, before)
            if new == current:
                continue
            if sum(r["score"] for r in evaluate(new, batch, labels)) > sum(
                r["score"] for r in before
            ):
                current, accepted = new, accepted + 1

    def scores(prompt: str) -> dict[str, float]:
        return {s: accuracy(prompt, data.splits[s], labels) for s in ("train", "val", "heldout")}

    return GreedyResult(seed, current, scores(seed), scores(current), accepted, proposals)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m banking77_task.smoke")
    parser.add_argument("--minibatch-size", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--show-prompt", action="store_true")
    args = parser.parse_args(argv)
    result = greedy(load_default(), args.minibatch_size, args.epochs)
    for split in ("train", "val", "heldout"):
        print(f"{split:8s} seed={result.seed[split]:.3f} best={result.best[split]:.3f}")
    print(f"proposals={result.proposals} accepted={result.accepted}")
    if args.show_prompt:
        print(result.best_prompt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
