"""The quality suite: every task/proposer pair of bench/quality/pairs.py in one run.

    python bench/quality_suite.py [--pairs banking77 banking77_learned ...]
        [--budgets ...] [--seeds 0 1 2 3 4] [--engines gepa full default greedy]
        [--variant NAME=JSON ...] [--crafter-steps 150]

For each pair: the reference `gepa` (0.1.4, all defaults but the budget), gepa-cli
`full` (the reference's algorithm), gepa-cli `default` (the defaults when it runs), the
greedy loop without validation and any `--variant`, over the seeds and each pair's
budgets (`--budgets` overrides them for every pair). Writes
bench/results/quality_<pair>.{md,json} per pair and quality_suite.{md,json} with every
pair's heldout table. Any interpreter will do: it re-runs itself in bench/.venv-quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main(pairs.ALL, __file__))
