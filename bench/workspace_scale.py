"""Scale bench: `workspace status` and a grouped query over 100 runs, 1,000,000 rollouts.

Builds a synthetic workspace in a temp dir (two writer processes; each run is a real run
of the engine and the recorder over an offline task, see synthetic_runs.py), then times
the CLI as a user runs it (fresh process each time, best of 3) and prints each time
against its target as a ratio (<= 1.0 meets the target).

    .venv/bin/python bench/workspace_scale.py [--runs 100] [--rollouts 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from synthetic_runs import SyntheticSpec, write_synthetic_run

STATUS_TARGET_S = 5.0
QUERY_TARGET_S = 2.0
GROUPED_QUERY = (
    "SELECT r.run_id, r.state, count(*) AS rollouts, avg(score) AS accuracy, "
    "sum(rollouts.cost_usd) AS cost_usd, avg((cache_action = 'hit')::INT) AS hit_rate "
    "FROM rollouts JOIN runs r USING (run_id) GROUP BY ALL ORDER BY accuracy DESC"
)


def build(args: tuple[Path, int, int]) -> int:
    root, index, target = args
    spec = SyntheticSpec(
        f"run-{index:03d}",
        target_rollouts=target,
        n_train=200,
        n_val=100,
        n_heldout=20,
        minibatch=10,
        seed=index,
        state="stopped" if index % 10 == 9 else "finished",
        # a million cache entries on disk would measure the disk, not the workspace
        cache_mode="off",
        checkpoint_every=20,
    )
    rd = write_synthetic_run(root, spec)
    return rd.rollouts.read_bytes().count(b"\n")


def timed(cmd: list[str], repeat: int = 3) -> tuple[float, int]:
    best = float("inf")
    code = 0
    for _ in range(repeat):
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False).returncode
        best = min(best, time.perf_counter() - start)
    return best, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rollouts", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp workspace")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gepa-workspace-bench-"))
    root = tmp / "runs"
    # a synthetic run stops before an iteration that would pass its target, so aim one
    # worst-case iteration (2 minibatches + validation + heldout) higher to reach the
    # total; the stopped runs (every tenth) end at their midpoint, so all aim higher
    stopped = sum(1 for index in range(opts.runs) if index % 10 == 9)
    per_run = math.ceil(opts.rollouts / (opts.runs - stopped / 2)) + 2 * 10 + 100 + 2 * 20
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = sum(pool.map(build, [(root, i, per_run) for i in range(opts.runs)]))
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(
        f"built {opts.runs} runs, {rows:,} rollout rows, {size / 1e6:.0f} MB "
        f"in {time.perf_counter() - start:.1f}s at {root}"
    )
    cli = [sys.executable, "-m", "gepa_cli.cli.main"]
    status_s, code = timed([*cli, "workspace", "status", str(root), "--json"])
    print(
        f"workspace status --json: {status_s:.2f}s (target {STATUS_TARGET_S:.0f}s, "
        f"ratio {status_s / STATUS_TARGET_S:.2f}, exit {code})"
    )
    query_s, code = timed([*cli, "query", GROUPED_QUERY, "--runs", str(root), "--format", "csv"])
    print(
        f"grouped query: {query_s:.2f}s (target {QUERY_TARGET_S:.0f}s, "
        f"ratio {query_s / QUERY_TARGET_S:.2f}, exit {code})"
    )
    if not opts.keep:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
