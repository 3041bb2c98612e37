"""Quality pair (d): the Crafter cookbook, offline.

Real episodes of crafter 1.8.3 played by the cookbook's offline agent, its offline
proposer (bench/quality/crafter.py). Episodes cost real CPU: budgets 100 and 300 by
default, `--crafter-steps` (150) caps an episode.

    python bench/quality_crafter.py [--budgets ...] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME=JSON ...]

Runs the reference `gepa`, gepa-cli `full`, gepa-cli `default`, the greedy loop and any
variants (bench/quality/runner.py says more); results in
bench/results/quality_crafter.{md,json}. Any interpreter will do: it re-runs itself in
bench/.venv-quality (bench/reference_env.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main([pairs.CRAFTER], __file__))
