"""Quality pair (a): Banking77 with the cookbook's offline proposer.

The proposer fixes every wrong example it is shown (cookbooks/banking77/banking77_task/
propose.py); bench/quality/pairs.py says what the pair shows.

    python bench/quality_banking77.py [--budgets ...] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME=JSON ...]

Runs the reference `gepa`, gepa-cli `full`, gepa-cli `default`, the greedy loop and any
variants (bench/quality/runner.py says more); results in
bench/results/quality_banking77.{md,json}. Any interpreter will do: it re-runs itself in
bench/.venv-quality (bench/reference_env.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main([pairs.BANKING77], __file__))
