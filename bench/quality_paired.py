"""Paired comparison of two engines in a quality result file, seed by seed.

The suite's tables give each engine's mean and sd over seeds; two engines run on the
same seeds share their minibatch draws and data, so their per-seed difference is the
sharper test of which is better:

    python bench/quality_paired.py bench/results/quality_banking77_careless.json \\
        "gepa-cli default" greedy

prints, per budget, the mean difference in heldout points, its standard error, the t
statistic of the paired difference and on how many seeds the first engine won.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any


def paired(runs: list[dict[str, Any]], first: str, second: str) -> list[dict[str, Any]]:
    by: dict[int, dict[str, dict[int, float]]] = {}
    for run in runs:
        if run["best_heldout"] is None:
            continue
        engines = by.setdefault(int(run["budget"]), {})
        engines.setdefault(run["engine"], {})[int(run["seed"])] = float(run["best_heldout"])
    rows = []
    for budget, engines in sorted(by.items()):
        a, b = engines.get(first, {}), engines.get(second, {})
        seeds = sorted(set(a) & set(b))
        if len(seeds) < 2:
            continue
        diffs = [100 * (a[s] - b[s]) for s in seeds]
        mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
        se = sd / math.sqrt(len(diffs))
        rows.append(
            {
                "budget": budget,
                "seeds": len(seeds),
                "first_mean": 100 * statistics.mean(a[s] for s in seeds),
                "second_mean": 100 * statistics.mean(b[s] for s in seeds),
                "difference": mean,
                "se": se,
                "t": mean / se if se > 0 else math.inf,
                "wins": sum(d > 0 for d in diffs),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a bench/results/quality_<pair>.json")
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args()
    try:
        runs = json.loads(args.results.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(
            f"{args.results}: not a quality result file ({type(exc).__name__}: {exc}); "
            "pass a bench/results/quality_<pair>.json"
        ) from None
    rows = paired(runs, args.first, args.second)
    if not rows:
        raise SystemExit(f"{args.results}: no budget has both {args.first!r} and {args.second!r}")
    print(f"| budget | seeds | {args.first} | {args.second} | difference | se | t | wins |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['budget']} | {r['seeds']} | {r['first_mean']:.1f} | {r['second_mean']:.1f} "
            f"| {r['difference']:+.1f} | {r['se']:.1f} | {r['t']:.1f} | {r['wins']}/{r['seeds']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
