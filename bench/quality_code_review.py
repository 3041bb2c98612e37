"""Quality pair (d): the code-review cookbook, offline.

Its offline reviewer and grader and its offline proposer, in-process, on all of its
bundled diffs (bench/quality/code_review.py).

    python bench/quality_code_review.py [--budgets ...] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME=JSON ...]

Runs the reference `gepa`, gepa-cli `full`, gepa-cli `default`, the greedy loop and any
variants (bench/quality/runner.py says more); results in
bench/results/quality_code_review.{md,json}. Any interpreter will do: it re-runs itself in
bench/.venv-quality (bench/reference_env.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main([pairs.CODE_REVIEW], __file__))
