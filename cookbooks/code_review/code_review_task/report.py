"""Reports over runs of this cookbook, read from their run directories.

``python -m code_review_task.report frontier RUN_DIR`` lists the frontier's
non-dominated members (by validation precision, recall and quiet) next to the seed,
with their scores on validation and heldout. Heldout scores come from the run's own
heldout rollouts where it has them (the engine evaluates the seed, the best candidate
and, with ``heldout_candidates = "frontier"``, up to ``max_heldout_candidates``
frontier members); for the other members of an ``offline`` run they are computed here
with the same offline reviewer and grader the container uses, on the run's heldout
diffs.

``python -m code_review_task.report seeds --config gepa.toml --seeds 0 1 2`` runs the
config once per run seed and prints wall time, seed and best heldout reward, and the
frontier's size, with the means.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import load
from .evaluate import evaluate

OBJECTIVES = ("precision", "recall", "quiet")


@dataclass
class Member:
    candidate_id: str
    keys: list[str]
    val: dict[str, float]
    heldout: dict[str, float] | None
    heldout_source: str
    non_dominated: bool  # on the frontier, and no other member beats it


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def non_dominated(points: dict[str, dict[str, float]]) -> list[str]:
    """Ids whose objective vector no other id beats on one objective without losing on
    another; of ids with equal vectors, the first in id order stands for them."""
    out: list[str] = []
    for cid in sorted(points):
        p = points[cid]
        beaten = any(
            all(q[k] >= p[k] for k in OBJECTIVES) and any(q[k] > p[k] for k in OBJECTIVES)
            for other, q in points.items()
            if other != cid
        )
        same = any(points[o] == p for o in out)
        if not beaten and not same:
            out.append(cid)
    return out


def _heldout_from_rollouts(run_dir: Path, expected: int) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    for r in _jsonl(run_dir / "rollouts.jsonl"):
        if r.get("split") != "heldout":
            continue
        cid = str(r["candidate_id"])
        counts[cid] += 1
        sums[cid]["reward"] += float(r.get("score") or 0.0)
        for k in OBJECTIVES:
            sums[cid][k] += float((r.get("objectives") or {}).get(k, 0.0))
    return {
        cid: {k: v / counts[cid] for k, v in s.items()}
        for cid, s in sums.items()
        if counts[cid] == expected
    }


def frontier_report(run_dir: Path) -> tuple[dict[str, Any], list[Member]]:
    frontier = json.loads((run_dir / "frontier.json").read_text(encoding="utf-8"))
    candidates = {c["candidate_id"]: c for c in _jsonl(run_dir / "candidates.jsonl")}
    started = next(e for e in _jsonl(run_dir / "events.jsonl") if e["type"] == "run.started")
    heldout_ids = list(started["data"].get("heldout_ids") or [])
    resolved = json.loads((run_dir / "config.resolved.json").read_text(encoding="utf-8"))
    config = resolved.get("config", resolved)
    offline = config.get("policy", {}).get("backend") == "offline"
    seed = next(c for c, row in candidates.items() if row.get("origin") == "seed")
    keys: dict[str, list[str]] = defaultdict(list)
    for key, ids in frontier["frontier"].items():
        for cid in ids:
            keys[cid].append(key)
    val = {
        cid: {
            **{k: float(candidates[cid]["objective_means"].get(k, 0.0)) for k in OBJECTIVES},
            "reward": float(candidates[cid]["val_mean"]),
        }
        for cid in set(keys) | {seed}
        if cid in candidates
    }
    front = non_dominated({c: val[c] for c in keys})
    shown = [seed, *[c for c in front if c != seed]]
    recorded = _heldout_from_rollouts(run_dir, len(heldout_ids))
    ds = load()
    examples = [e for e in (ds.by_id(i) for i in heldout_ids) if e is not None]
    members = []
    for cid in shown:
        if cid in recorded:
            held, source = recorded[cid], "run"
        elif offline and len(examples) == len(heldout_ids):
            held, source = evaluate(candidates[cid]["texts"]["checklist"], examples), "evaluate"
        else:
            held, source = None, "-"
        members.append(Member(cid, sorted(keys.get(cid, [])), val[cid], held, source, cid in front))
    facts = {
        "run_dir": str(run_dir),
        "frontier_type": frontier.get("frontier_type"),
        "frontier_members": len(keys),
        "non_dominated": len(front),
        "best_candidate_id": frontier.get("best_candidate_id"),
    }
    return facts, members


def _fmt(scores: dict[str, float] | None) -> str:
    if scores is None:
        return f"{'-':>6} {'-':>6} {'-':>6} {'-':>6}"
    return " ".join(f"{scores[k]:6.3f}" for k in ("reward", *OBJECTIVES))


def print_frontier(run_dir: Path) -> int:
    facts, members = frontier_report(run_dir)
    print(
        f"{facts['run_dir']}: {facts['frontier_type']} frontier, {facts['frontier_members']} "
        f"member(s), {facts['non_dominated']} non-dominated; best {facts['best_candidate_id']}"
    )
    head = "reward    prec  recall  quiet"
    print(f"{'candidate':9}  {'val: ' + head:34}  {'heldout: ' + head:38}  {'source':8}  keys")
    for m in members:
        objectives = [k.removeprefix("objective:") for k in m.keys if k.startswith("objective:")]
        diffs = len(m.keys) - len(objectives)  # hybrid: fronts of single val diffs
        label = ", ".join([*objectives, *([f"{diffs} val diffs"] if diffs else [])]) or "seed"
        print(
            f"{m.candidate_id:9}  {_fmt(m.val):34}  {_fmt(m.heldout):38}  "
            f"{m.heldout_source:8}  {label}"
        )
    return 0


def run_seeds(config: Path, seeds: Sequence[int], output_dir: Path, cache_mode: str | None) -> int:
    from gepa_cli.config import load_config
    from gepa_cli.runner import GepaRun

    rows = []
    for seed in seeds:
        overrides: dict[str, Any] = {
            "run.seed": seed,
            "run.run_id": f"{config.stem}-seed{seed}",
            "run.output_dir": str(output_dir),
            "cache.mode": cache_mode,
        }
        started = time.perf_counter()
        result = GepaRun(load_config(config, overrides=overrides), config_path=config).execute()
        seconds = time.perf_counter() - started
        facts, _ = frontier_report(result.run_dir)
        seed_c, best_c = result.seed_candidate or {}, result.best_candidate or {}
        rows.append(
            (
                seed,
                seconds,
                float(seed_c.get("heldout_mean") or 0.0),
                float(best_c.get("heldout_mean") or 0.0),
                facts["frontier_members"],
                facts["non_dominated"],
                result.run_dir,
            )
        )
    print(
        f"{'seed':>4} {'wall s':>7} {'seed heldout':>12} {'best heldout':>12} {'gain':>6} "
        f"{'frontier':>8} {'non-dom':>7}  run"
    )
    for seed, secs, s, b, n, nd, run_dir in rows:
        print(f"{seed:>4} {secs:7.1f} {s:12.3f} {b:12.3f} {b - s:+6.3f} {n:>8} {nd:>7}  {run_dir}")
    k = len(rows)
    mean_s, mean_b = sum(r[2] for r in rows) / k, sum(r[3] for r in rows) / k
    print(
        f"mean {sum(r[1] for r in rows) / k:7.1f} {mean_s:12.3f} {mean_b:12.3f} "
        f"{mean_b - mean_s:+6.3f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m code_review_task.report")
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("frontier", help="the frontier's members on validation and heldout")
    f.add_argument("run_dir", type=Path)
    s = sub.add_parser("seeds", help="run a config once per run seed; seed vs best heldout")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--output-dir", type=Path, default=Path("runs/code_review_seeds"))
    s.add_argument("--cache-mode", choices=("off", "readwrite", "readonly"))
    args = parser.parse_args(argv)
    try:
        if args.command == "frontier":
            return print_frontier(args.run_dir)
        return run_seeds(args.config.resolve(), args.seeds, args.output_dir, args.cache_mode)
    except (OSError, KeyError, StopIteration, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
