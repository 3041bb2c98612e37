"""The README's headline numbers: ``python -m tblite_task.seeds [--seeds 0 1 2]``.

Runs ``gepa.toml`` once per run seed (``[run] seed``: minibatch sampling and candidate
selection), each with its own fresh cache so every rollout is live, and prints per seed
the wall time and the seed's and best candidate's heldout pass rates, then their means.
Exits 1 when the mean gain is under ``--min-gain`` points.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gepa_cli.config.load import load_config
from gepa_cli.runner import GepaRun

CONFIG = Path(__file__).resolve().parents[1] / "gepa.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tblite_task.seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--min-gain", type=float, default=15.0)
    args = parser.parse_args(argv)
    out = args.output_dir or Path(tempfile.mkdtemp(prefix="tblite-seeds-"))
    rows = []
    print("| run seed | wall s | seed heldout | best heldout | gain (points) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="tblite-cache-") as cache:
            config = load_config(
                args.config,
                overrides={
                    "run.seed": seed,
                    "run.run_id": f"seed{seed}",
                    "run.output_dir": str(out),
                    "cache.path": cache,
                },
            )
            started = time.monotonic()
            result = GepaRun(config, config_path=args.config.resolve()).execute()
            wall = time.monotonic() - started
        seed_h = 100 * result["seed_candidate"]["heldout_mean"]
        best_h = 100 * result["best_candidate"]["heldout_mean"]
        rows.append((wall, seed_h, best_h))
        print(f"| {seed} | {wall:.1f} | {seed_h:.1f}% | {best_h:.1f}% | {best_h - seed_h:+.1f} |")
    walls, seeds, bests = zip(*rows, strict=True)
    gain = statistics.mean(bests) - statistics.mean(seeds)
    print(
        f"| mean | {statistics.mean(walls):.1f} | {statistics.mean(seeds):.1f}% "
        f"| {statistics.mean(bests):.1f}% | {gain:+.1f} |"
    )
    print(f"run directories: {out}")
    return 0 if gain >= args.min_gain else 1


if __name__ == "__main__":
    raise SystemExit(main())
