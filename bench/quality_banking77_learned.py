"""Quality pair (b): Banking77 with a second, deliberately different proposer.

The proposer (bench/quality/learned_cues.py) adds at most two cue words per wrong
example, never removes one, and learns its word statistics only from the records it is
shown in the run.

    python bench/quality_banking77_learned.py [--budgets ...] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME=JSON ...]

Runs the reference `gepa`, gepa-cli `full`, gepa-cli `default`, the greedy loop and any
variants (bench/quality/runner.py says more); results in
bench/results/quality_banking77_learned.{md,json}. Any interpreter will do: it re-runs itself in
bench/.venv-quality (bench/reference_env.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main([pairs.LEARNED], __file__))
