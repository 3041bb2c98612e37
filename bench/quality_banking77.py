"""Quality benchmark on Banking77: gepa-cli's engine against the reference `gepa` package.

Both engines optimize the same system prompt on the same split of the full Banking77
train CSV, with the same offline policy (the cookbook's `offline_predict`, scored by its
`reward_info`) and the same offline proposer (the cookbook's `propose_text`), both run
in-process. Only the search differs:

- gepa-cli: `GepaEngine` with default settings and `max_train_rollouts = budget`
  (train + val rollouts; the heldout evaluation of seed and best is outside it).
- reference: `gepa.optimize` (pinned in requirements-quality.txt) with a `GEPAAdapter`
  whose `evaluate` runs the policy and whose `propose_new_texts` runs the proposer,
  `max_metric_calls = budget`, all other arguments at their defaults. Seed and best are
  evaluated on heldout afterwards, outside the budget, as gepa-cli's engine does.

Each (engine, budget) runs once per seed; the seed drives the engine's RNG (minibatch
sampling, candidate selection). The data split is fixed (the cookbook loader's seed).

    python bench/quality_banking77.py [--data-dir ../shared/data/banking77]
        [--budgets 1000 3000] [--seeds 0 1 2 3 4] [--val-cap 200] [--heldout-cap 500]

Any interpreter will do: when `gepa` (pinned) or gepa-cli is missing it creates
bench/.venv-quality, installs bench/requirements-quality.txt and this checkout there
(never into the project's own venv), and re-runs itself with that interpreter.
Results go to bench/results/quality_banking77.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COOKBOOK = ROOT / "cookbooks" / "banking77"
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "banking77"
COMPONENT = "system_prompt"

if str(COOKBOOK) not in sys.path:
    sys.path.insert(0, str(COOKBOOK))
sys.path.insert(0, str(ROOT / "bench"))
import reference_env  # noqa: E402

# --- environment -----------------------------------------------------------------------


def ensure_environment() -> None:
    reference_env.ensure_environment(__file__)


# --- the task, shared by both engines --------------------------------------------------


@dataclass(frozen=True)
class Row:
    example_id: str
    query: str
    label: str


@dataclass(frozen=True)
class Task:
    labels: tuple[str, ...]
    train: tuple[Row, ...]
    val: tuple[Row, ...]
    heldout: tuple[Row, ...]
    sizes_before_caps: dict[str, int]

    def rows(self) -> dict[str, Row]:
        return {r.example_id: r for r in (*self.train, *self.val, *self.heldout)}


def load_task(data_dir: Path, val_cap: int, heldout_cap: int) -> Task:
    from banking77_task.data import load_dir

    data = load_dir(data_dir)

    def rows(split: str, cap: int | None) -> tuple[Row, ...]:
        examples = data.splits[split][:cap]
        return tuple(Row(f"{split}:{i}", ex.text, ex.label) for i, ex in enumerate(examples))

    return Task(
        labels=data.labels,
        train=rows("train", None),
        val=rows("val", val_cap),
        heldout=rows("heldout", heldout_cap),
        sizes_before_caps={s: len(data.splits[s]) for s in ("train", "val", "heldout")},
    )


def run_policy(prompt: str, row: Row, labels: Sequence[str]) -> dict[str, Any]:
    """One rollout, as the container's offline backend answers it."""
    from banking77_task.policy import offline_predict, reward_info

    predicted = offline_predict(prompt, row.query, labels).label
    info = reward_info(predicted, row.label, row.query)
    return {
        "example_id": row.example_id,
        "inputs": {"query": row.query, "label": row.label},
        "output": predicted,
        "score": float(info["outcome_reward"]),
        "feedback": str(info["feedback"]),
    }


def accuracy(prompt: str, rows: Sequence[Row], labels: Sequence[str]) -> float:
    return sum(run_policy(prompt, r, labels)["score"] for r in rows) / len(rows)


def seed_text(task: Task) -> str:
    from banking77_task.guidance import seed_prompt

    return str(seed_prompt(task.labels))


# --- gepa-cli's engine -----------------------------------------------------------------


def ours_settings(budget: int, **gepa: Any) -> Any:
    """The engine settings a `[gepa]` section with only this budget (and ``gepa``)
    resolves to: the project's defaults, as `gepa run` would use them."""
    from gepa_cli.config.models import GepaSettings
    from gepa_cli.engine import EngineSettings

    section = GepaSettings(max_train_rollouts=budget, **gepa)
    return EngineSettings.from_mapping(section.model_dump())


def run_ours_default(task: Task, budget: int, seed: int) -> dict[str, Any]:
    return run_ours(task, budget, seed, ours_settings(budget))


def run_ours_full(task: Task, budget: int, seed: int) -> dict[str, Any]:
    # today's GEPA algorithm: the comparison with the reference package
    settings = ours_settings(budget, validation="full", minibatch_schedule="fixed")
    return run_ours(task, budget, seed, settings)


def run_ours_variant(task: Task, budget: int, seed: int) -> dict[str, Any]:
    """Any [gepa] fields from $GEPA_QUALITY_VARIANT (JSON), for measuring levers."""
    gepa = json.loads(os.environ.get("GEPA_QUALITY_VARIANT") or "{}")
    return run_ours(task, budget, seed, ours_settings(budget, **gepa))


def run_ours(task: Task, budget: int, seed: int, settings: Any) -> dict[str, Any]:
    from banking77_task.propose import propose_text

    from gepa_cli.engine import (
        EvaluationRequest,
        ExampleResult,
        GepaEngine,
        ProposalRequest,
        ProposalResult,
    )
    from gepa_cli.runtime.proposers.prompt import parse_answer

    rows = task.rows()

    class Evaluator:
        async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
            prompt = request.texts[COMPONENT]
            out = []
            for example_id in request.example_ids:
                r = run_policy(prompt, rows[example_id], task.labels)
                out.append(
                    ExampleResult(
                        example_id=example_id,
                        score=r["score"],
                        output=r["output"],
                        feedback=r["feedback"],
                        objectives={"accuracy": r["score"]},
                        inputs=r["inputs"],
                    )
                )
            return out

    class Proposer:
        async def propose(self, request: ProposalRequest) -> ProposalResult:
            records = [
                {
                    "example_id": rec.example_id,
                    "inputs": dict(rec.inputs),
                    "output": rec.output,
                    "score": rec.score,
                    "feedback": rec.feedback,
                }
                for rec in request.records
            ]
            new_text = propose_text(request.current_text, records)
            # the command backend's path: the fenced answer, read by the same parser
            raw = f"```\n{new_text}\n```\n"
            parsed = parse_answer(raw, request.current_text)
            return ProposalResult(parsed.new_text, parsed.rejection, raw_output=raw)

    class Quiet:
        def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
            pass

    started = time.perf_counter()

    class Clock:
        def elapsed_seconds(self) -> float:
            return time.perf_counter() - started

        def stop_requested(self) -> str | None:
            return None

    engine = GepaEngine(
        settings,
        Evaluator(),
        Proposer(),
        Quiet(),
        Clock(),
        None,
        train_ids=[r.example_id for r in task.train],
        val_ids=[r.example_id for r in task.val],
        heldout_ids=[r.example_id for r in task.heldout],
        seed_texts={COMPONENT: seed_text(task)},
        rng_seed=seed,
    )
    result = asyncio.run(engine.run())
    wall = time.perf_counter() - started
    rollouts = result.budget["rollouts"]
    return {
        "seed_val": result.seed_val_mean,
        "seed_heldout": result.seed_heldout_mean,
        "best_val": result.best_val_mean,
        "best_heldout": result.best_heldout_mean,
        "evaluations": rollouts["train"] + rollouts["val"],
        "heldout_evaluations": rollouts["heldout"],
        "candidates": result.num_candidates,
        "iterations": result.iterations,
        "stopped_by": result.stopped_by,
        "wall_seconds": wall,
    }


# --- the reference gepa package --------------------------------------------------------


def run_reference(task: Task, budget: int, seed: int) -> dict[str, Any]:
    import gepa
    from banking77_task.propose import propose_text
    from gepa.core.adapter import EvaluationBatch

    labels = task.labels

    class Banking77Adapter:
        """Runs the cookbook's offline policy and offline proposer, like gepa-cli does."""

        def evaluate(
            self, batch: list[Row], candidate: dict[str, str], capture_traces: bool = False
        ) -> EvaluationBatch:
            results = [run_policy(candidate[COMPONENT], row, labels) for row in batch]
            return EvaluationBatch(
                outputs=[r["output"] for r in results],
                scores=[r["score"] for r in results],
                trajectories=results if capture_traces else None,
                objective_scores=[{"accuracy": r["score"]} for r in results],
            )

        def make_reflective_dataset(
            self,
            candidate: dict[str, str],
            eval_batch: EvaluationBatch,
            components_to_update: list[str],
        ) -> dict[str, list[dict[str, Any]]]:
            records = list(eval_batch.trajectories or [])
            return {component: records for component in components_to_update}

        def propose_new_texts(
            self,
            candidate: dict[str, str],
            reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
            components_to_update: list[str],
        ) -> dict[str, str]:
            return {
                c: propose_text(candidate[c], reflective_dataset[c]) for c in components_to_update
            }

    class Quiet:
        def log(self, message: str) -> None:
            pass

    seed_candidate = {COMPONENT: seed_text(task)}
    started = time.perf_counter()
    result = gepa.optimize(
        seed_candidate=seed_candidate,
        trainset=list(task.train),
        valset=list(task.val),
        adapter=Banking77Adapter(),
        max_metric_calls=budget,
        logger=Quiet(),
        seed=seed,
    )
    best = result.best_candidate
    best_prompt = best[COMPONENT] if isinstance(best, dict) else str(best)
    seed_heldout = accuracy(seed_candidate[COMPONENT], task.heldout, labels)
    best_heldout = accuracy(best_prompt, task.heldout, labels)
    wall = time.perf_counter() - started
    return {
        "seed_val": result.val_aggregate_scores[0],
        "seed_heldout": seed_heldout,
        "best_val": result.val_aggregate_scores[result.best_idx],
        "best_heldout": best_heldout,
        "evaluations": result.total_metric_calls,
        "heldout_evaluations": 2 * len(task.heldout),
        "candidates": result.num_candidates,
        "iterations": None,
        "stopped_by": "max_metric_calls",
        "wall_seconds": wall,
    }


ENGINES = {
    "gepa-cli default": run_ours_default,
    "gepa-cli full": run_ours_full,
    "gepa": run_reference,
    "gepa-cli variant": run_ours_variant,
}
DEFAULT_ENGINES = ["gepa-cli default", "gepa-cli full", "gepa"]


# --- report ----------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for engine in ENGINES:
        budgets = sorted({r["budget"] for r in runs if r["engine"] == engine})
        for budget in budgets:
            group = [r for r in runs if r["engine"] == engine and r["budget"] == budget]
            row: dict[str, Any] = {"engine": engine, "budget": budget, "runs": len(group)}
            for key in ("seed_val", "seed_heldout", "best_val", "best_heldout", "wall_seconds"):
                row[key] = mean_sd([r[key] for r in group])
            evals = [r["evaluations"] for r in group]
            row["evaluations"] = (statistics.fmean(evals), min(evals), max(evals))
            row["candidates"] = statistics.fmean(r["candidates"] for r in group)
            rows.append(row)
    return rows


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    def pct(pair: tuple[float, float]) -> str:
        return f"{100 * pair[0]:.1f} ± {100 * pair[1]:.1f}"

    sizes = meta["task"]
    lines = [
        "# Banking77 quality: gepa-cli engine vs reference gepa",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Data: {meta['data_dir']} (train.csv {sizes['train_csv_rows']} rows, split by the "
        f"cookbook loader with seed {meta['split_seed']}): train {sizes['train']}, "
        f"val {sizes['val']} (capped from {sizes['val_before_cap']}), "
        f"heldout {sizes['heldout']} (capped from {sizes['heldout_before_cap']}). "
        "Both engines use the cookbook's offline policy and offline proposer in-process; "
        f"engine seeds {meta['seeds']}; gepa {meta['versions']['gepa']}, "
        f"gepa-cli {meta['versions']['gepa-cli']}, Python {meta['python']}, "
        f"{meta['cpus']} CPUs.",
        "",
        "Accuracy in % (mean ± sd over seeds). *Evaluations* are the train + val rollouts "
        "the optimization used (mean [min-max]); the heldout evaluation of seed and best "
        f"({2 * sizes['heldout']} rollouts) is outside the budget for both engines. Wall "
        "time includes it.",
        "",
        "| engine | budget | runs | seed val | seed heldout | best val | best heldout "
        "| evaluations | candidates | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary:
        ev_mean, ev_min, ev_max = row["evaluations"]
        lines.append(
            f"| {row['engine']} | {row['budget']} | {row['runs']} | {pct(row['seed_val'])} "
            f"| {pct(row['seed_heldout'])} | {pct(row['best_val'])} "
            f"| {pct(row['best_heldout'])} | {ev_mean:.0f} [{ev_min}-{ev_max}] "
            f"| {row['candidates']:.1f} "
            f"| {row['wall_seconds'][0]:.1f} ± {row['wall_seconds'][1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/quality_banking77.py")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("BANKING77_DATA_DIR") or DEFAULT_DATA_DIR),
        help="folder with Banking77 train.csv (BANKING77_DATA_DIR layout); default: "
        "$BANKING77_DATA_DIR, else ../shared/data/banking77 relative to the repository root",
    )
    parser.add_argument("--budgets", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=DEFAULT_ENGINES)
    parser.add_argument("--val-cap", type=int, default=200)
    parser.add_argument("--heldout-cap", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS / "quality_banking77")
    args = parser.parse_args(argv)
    ensure_environment()

    from banking77_task.data import SPLIT_SEED, read_csv

    data_dir = args.data_dir.expanduser().resolve()
    if not (data_dir / "train.csv").is_file():
        parser.error(f"{data_dir} has no train.csv; pass --data-dir or set BANKING77_DATA_DIR")
    task = load_task(data_dir, args.val_cap, args.heldout_cap)
    command = "python bench/quality_banking77.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    meta = {
        "command": command.strip(),
        "data_dir": str(args.data_dir),
        "split_seed": SPLIT_SEED,
        "seeds": args.seeds,
        "budgets": args.budgets,
        "task": {
            "train_csv_rows": len(read_csv(data_dir / "train.csv")),
            "train": len(task.train),
            "val": len(task.val),
            "heldout": len(task.heldout),
            "val_before_cap": task.sizes_before_caps["val"],
            "heldout_before_cap": task.sizes_before_caps["heldout"],
        },
        "versions": {
            "gepa": importlib.metadata.version("gepa"),
            "gepa-cli": importlib.metadata.version("gepa-cli"),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(
        f"train {len(task.train)}, val {len(task.val)} (of {task.sizes_before_caps['val']}), "
        f"heldout {len(task.heldout)} (of {task.sizes_before_caps['heldout']})",
        file=sys.stderr,
    )
    runs: list[dict[str, Any]] = []
    for budget in args.budgets:
        for engine in args.engines:
            for seed in args.seeds:
                outcome = ENGINES[engine](task, budget, seed)
                runs.append({"engine": engine, "budget": budget, "seed": seed, **outcome})
                print(
                    f"{engine:16s} budget={budget} seed={seed} "
                    f"val {outcome['seed_val']:.3f}->{outcome['best_val']:.3f} "
                    f"heldout {outcome['seed_heldout']:.3f}->{outcome['best_heldout']:.3f} "
                    f"evals={outcome['evaluations']} {outcome['wall_seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarize(runs)
    report = markdown(summary, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(report, encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
