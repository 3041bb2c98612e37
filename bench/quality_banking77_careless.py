"""Quality pair (c): Banking77 where minibatch gains often do not survive validation.

The proposer (bench/quality/forgetful.py) is pair (b)'s, but for half of the requests (a
hash of the request decides) it also forgets the cues of every label its minibatch did
not show. What makes the pair noisy is that the minibatch cannot see the damage: such a
child fixed what it was shown, so it wins its minibatch, and loses on validation, which
covers many more labels. A loop that never validates keeps whatever its last minibatch
liked, so it must lose here; GEPA's validation rejects those children. The share is
set so the regime is clear at both budgets: at 30% the greedy loop still matched our
default at 1,000 rollouts (15.9 +- 6.6 against 14.9 +- 2.3) and trailed it by 5.7
points at 3,000; at 50% it trails at both.

Why not a noisy policy (a hash flipping a share of predictions per prompt and example):
measured while building this pair, it does not make skipping validation lose. With 30%
of predictions flipped and the cookbook's proposer, the greedy loop still led (heldout
34.6% against 16.4% for our default at 3,000 rollouts, 3 seeds): the proposer's edits
are real improvements on average, and noise only slows a loop that accepts them. Only
edits whose harm the minibatch cannot see make validation pay.

    python bench/quality_banking77_careless.py [--budgets ...] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME=JSON ...]

Runs the reference `gepa`, gepa-cli `full`, gepa-cli `default`, the greedy loop and any
variants (bench/quality/runner.py says more); results in
bench/results/quality_banking77_careless.{md,json}. Any interpreter will do: it re-runs
itself in bench/.venv-quality (bench/reference_env.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import pairs, runner

if __name__ == "__main__":
    raise SystemExit(runner.main([pairs.CARELESS], __file__))
