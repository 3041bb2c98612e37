"""Score a checklist with the offline reviewer on a split, without the optimizer.

``python -m code_review_task.evaluate [CHECKLIST_FILE] [--split heldout]`` prints the
mean reward and objectives (the seed checklist when no file is given; ``-`` reads
stdin). Handy to check a checklist exported from a run, or one written by hand.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from . import reviewer
from .data import SPLITS, Example, load
from .prompt import SEED_CHECKLIST
from .task import grade


def evaluate(checklist: str, examples: Sequence[Example]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for ex in examples:
        out = grade(checklist, ex, reviewer.answer(checklist, ex.diff))
        totals["reward"] += out.reward
        for k, v in out.objectives.items():
            totals[k] += v
    n = max(1, len(examples))
    return {k: round(v / n, 4) for k, v in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m code_review_task.evaluate")
    parser.add_argument("checklist", nargs="?", help="a file with the checklist, or - for stdin")
    parser.add_argument("--split", choices=SPLITS, action="append")
    args = parser.parse_args(argv)
    if args.checklist == "-":
        text = sys.stdin.read()
    elif args.checklist:
        text = Path(args.checklist).read_text(encoding="utf-8")
    else:
        text = SEED_CHECKLIST
    ds = load()
    for split in args.split or list(SPLITS):
        r = evaluate(text, ds.split(split))
        print(
            f"{split:8} reward {r['reward']:.3f}  precision {r['precision']:.3f}  "
            f"recall {r['recall']:.3f}  quiet {r['quiet']:.3f}  ({len(ds.split(split))} diffs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
