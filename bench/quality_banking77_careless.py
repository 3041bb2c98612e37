"""Quality pair (c): Banking77 where minibatch gains often do not survive validation.

The proposer (bench/quality/forgetful.py) is pair (b)'s, but for 30% of requests (a
hash of the request decides) it also forgets the cues of every label its minibatch did
not show: the child wins its minibatch and loses on validation, so a loop that never
validates must lose here.

    python bench/quality_banking77_careless.py [--budgets ...] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME=JSON ...]

Runs the reference `gepa`, gepa-cli `full`, gepa-cli `default`, the greedy loop and any
variants (bench/quality/runner.py says more); results in
bench/results/quality_banking77_careless.{md,json}. Any interpreter will do: it re-runs itself in
bench/.venv-quality (bench/reference_env.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main([pairs.CARELESS], __file__))
