"""Wall time of a run when rollouts and proposals are slow: both pipeline modes of
gepa-cli against the reference `gepa` package, and the quality each mode reaches.

The task is Banking77 (real data, train 1,500 / val 200 by default) with the
cookbook's offline policy behind a container that answers each rollout after a fixed
latency (bench/pipeline/latency_container.py, 200 ms), and the cookbook's offline
proposer answering after a fixed latency (bench/pipeline/slow_proposer.py, 1 s and 5 s).
The rollout budget is 2,000, with 32 concurrent rollout slots.

- gepa-cli runs are real `gepa-cli gepa run` processes on a written config:
  `sync_serial` and `async_pipelined` (each K of --in-flight), the container in process
  (`app`) and, for the pipelined mode, also as a child process (`command`).
- The reference package (gepa 0.1.4, all defaults but the budget) runs with an adapter
  that evaluates each batch on 32 threads (each rollout sleeps the same latency, then
  runs the same policy in the thread: no HTTP, so its overhead is lower than ours)
  and proposes by sleeping the same proposer latency and running the same proposer.

Wall time is the optimization's: for gepa-cli the manifest's started/finished times
(container handshake included, interpreter start not), for the reference the
`gepa.optimize` call. The ideal is n x latency / concurrency for the n rollouts the
run spent (no proposer time at all: no run can reach it).

Quality: the same runs' heldout accuracy does not depend on timing (a run's decisions
never do), so it is measured with zero latency: both modes at --quality-budgets over
--quality-seeds, heldout 500 examples, the seed and the best (or frontier members)
evaluated outside the budget.

    python bench/pipeline_throughput.py [--data-dir ../shared/data/banking77]
        [--proposer-latency 1 5] [--in-flight 4 16] [--skip-reference] [--skip-quality]

Any interpreter will do: it re-runs itself in bench/.venv-quality (reference_env.py).
Results go to bench/results/pipeline_throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "bench" / "pipeline"
COOKBOOK = ROOT / "cookbooks" / "banking77"
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "banking77"
COMPONENT = "system_prompt"
GEPA_CLI = str(Path(sys.executable).parent / "gepa-cli")

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(COOKBOOK))
import reference_env  # noqa: E402

# --- gepa-cli runs ---------------------------------------------------------------------


def write_config(
    folder: Path,
    *,
    mode: str,
    in_flight: int,
    launch: str,
    staleness: str = "",
    budget: int,
    concurrency: int,
    proposer_latency: float,
    train: int,
    val: int,
    heldout: int,
    seed: int,
) -> Path:
    if launch == "app":
        container = 'app = "latency_container:app"'
    else:
        container = 'command = ["{python}", "%s", "--port", "{port}"]' % (
            HERE / "latency_container.py"
        )
    heldout_lines = f'heldout_split = "heldout"\nheldout_seeds = "0:{heldout}"\n' if heldout else ""
    proposer = ["{python}", str(HERE / "slow_proposer.py"), "--latency", str(proposer_latency)]
    text = f"""
[run]
output_dir = "{folder / "runs"}"
seed = {seed}

[container]
{container}
max_concurrency = {concurrency}
request_timeout_seconds = 120

[dataset]
train_split = "train"
val_split = "val"
train_seeds = "0:{train}"
val_seeds = "0:{val}"
{heldout_lines}
[policy]
backend = "offline"

[proposer]
backend = "command"
command = {json.dumps(proposer)}
input = "json"
timeout_seconds = 600

[gepa]
# train + val rollouts; the heldout evaluation after the search is outside it
max_train_rollouts = {budget}

[gepa.pipeline]
mode = "{mode}"
max_in_flight_candidates = {in_flight}
{f'staleness_policy = "{staleness}"' if staleness else ""}
"""
    path = folder / "gepa.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_gepa_cli(config: Path, env: Mapping[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "gepa-cli"),
            "gepa",
            "run",
            "--config",
            str(config),
            "--run-id",
            "bench",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    process_wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"gepa-cli run failed ({config}):\n{done.stderr[-2000:]}")
    manifest_path = config.parent / "runs" / "bench" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    budget = manifest["budget"]
    rollouts = budget["rollouts"]
    wall = (
        datetime.fromisoformat(manifest["finished_at"])
        - datetime.fromisoformat(manifest["started_at"])
    ).total_seconds()
    best = manifest.get("best_candidate") or {}
    seed = manifest.get("seed_candidate") or {}
    return {
        "wall_seconds": wall,
        "process_seconds": process_wall,
        "rollouts": rollouts["train"] + rollouts["val"],
        "heldout_rollouts": rollouts["heldout"],
        "proposals": budget["proposals"],
        "candidates": manifest.get("num_candidates"),
        "stopped_by": manifest.get("stopped_by"),
        "seed_heldout": seed.get("heldout_mean"),
        "best_heldout": best.get("heldout_mean"),
        "best_val": best.get("val_mean"),
    }


def gepa_cli_env(data_dir: Path, latency: float) -> dict[str, str]:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {
        "PYTHONPATH": path,
        "BANKING77_DATA_DIR": str(data_dir),
        "BENCH_ROLLOUT_LATENCY": str(latency),
    }


# --- the reference package -------------------------------------------------------------


def run_reference(
    data_dir: Path,
    *,
    budget: int,
    latency: float,
    proposer_latency: float,
    concurrency: int,
    train: int,
    val: int,
    seed: int,
) -> dict[str, Any]:
    import gepa
    from banking77_task.data import load_dir
    from banking77_task.guidance import seed_prompt
    from banking77_task.policy import offline_predict, reward_info
    from banking77_task.propose import propose_text
    from gepa.core.adapter import EvaluationBatch

    data = load_dir(data_dir)
    labels = data.labels
    trainset = [{"query": e.text, "label": e.label} for e in data.splits["train"][:train]]
    valset = [{"query": e.text, "label": e.label} for e in data.splits["val"][:val]]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
    proposals = 0

    def rollout(prompt: str, row: Mapping[str, str]) -> dict[str, Any]:
        time.sleep(latency)
        predicted = offline_predict(prompt, row["query"], labels).label
        info = reward_info(predicted, row["label"], row["query"])
        return {
            "inputs": dict(row),
            "output": predicted,
            "score": float(info["outcome_reward"]),
            "feedback": str(info["feedback"]),
        }

    class ThreadedAdapter:
        def evaluate(
            self,
            batch: list[Mapping[str, str]],
            candidate: dict[str, str],
            capture_traces: bool = False,
        ) -> EvaluationBatch:
            results = list(pool.map(lambda row: rollout(candidate[COMPONENT], row), batch))
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
            nonlocal proposals
            proposals += 1
            time.sleep(proposer_latency)
            return {
                c: propose_text(candidate[c], reflective_dataset[c]) for c in components_to_update
            }

    class Quiet:
        def log(self, message: str) -> None:
            pass

    started = time.perf_counter()
    result = gepa.optimize(
        seed_candidate={COMPONENT: seed_prompt(labels)},
        trainset=trainset,
        valset=valset,
        adapter=ThreadedAdapter(),
        max_metric_calls=budget,
        logger=Quiet(),
        seed=seed,
    )
    wall = time.perf_counter() - started
    pool.shutdown()
    return {
        "wall_seconds": wall,
        "rollouts": result.total_metric_calls,
        "proposals": proposals,
        "candidates": result.num_candidates,
    }


# --- the benchmark ---------------------------------------------------------------------


def throughput(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    env = gepa_cli_env(args.data_dir, args.latency)
    for p_latency in args.proposer_latency:
        runs: list[tuple[str, str, int, str]] = [("gepa-cli sync_serial", "sync_serial", 1, "app")]
        for k in args.in_flight:
            for launch in args.launch:
                where = "" if launch == "app" else ", child container"
                runs.append(
                    (f"gepa-cli async_pipelined K={k}{where}", "async_pipelined", k, launch)
                )
        for name, mode, k, launch in runs:
            folder = Path(tempfile.mkdtemp(dir=work))
            config = write_config(
                folder,
                mode=mode,
                in_flight=k,
                launch=launch,
                budget=args.budget,
                concurrency=args.concurrency,
                proposer_latency=p_latency,
                train=args.train,
                val=args.val,
                heldout=0,
                seed=0,
            )
            result = run_gepa_cli(config, env)
            rows.append({"run": name, "proposer_latency": p_latency, **result})
            report(rows[-1], args)
        if not args.skip_reference:
            result = run_reference(
                args.data_dir,
                budget=args.budget,
                latency=args.latency,
                proposer_latency=p_latency,
                concurrency=args.concurrency,
                train=args.train,
                val=args.val,
                seed=0,
            )
            rows.append({"run": "gepa 0.1.4, 32 threads", "proposer_latency": p_latency, **result})
            report(rows[-1], args)
    for row in rows:
        row["ideal_seconds"] = row["rollouts"] * args.latency / args.concurrency
        row["ratio_to_ideal"] = row["wall_seconds"] / row["ideal_seconds"]
        reference = next(
            (
                r
                for r in rows
                if r["run"].startswith("gepa ") and r["proposer_latency"] == row["proposer_latency"]
            ),
            None,
        )
        row["speedup_vs_reference"] = (
            reference["wall_seconds"] / row["wall_seconds"] if reference else None
        )
    return rows


def report(row: Mapping[str, Any], args: argparse.Namespace) -> None:
    ideal = row["rollouts"] * args.latency / args.concurrency
    print(
        f"  proposer {row['proposer_latency']:g}s  {row['run']:<48} "
        f"{row['wall_seconds']:7.1f}s  {row['rollouts']:5d} rollouts  "
        f"{row['proposals']:4d} proposals  ratio to ideal {row['wall_seconds'] / ideal:5.2f}",
        flush=True,
    )


def quality(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    env = gepa_cli_env(args.data_dir, 0.0)
    rows = []
    for budget in args.quality_budgets:
        modes = [("sync_serial", 1, "")] + [
            ("async_pipelined", k, policy) for k in args.in_flight for policy in args.staleness
        ]
        for mode, k, policy in modes:
            scores, used = [], []
            for seed in args.quality_seeds:
                folder = Path(tempfile.mkdtemp(dir=work))
                config = write_config(
                    folder,
                    mode=mode,
                    in_flight=k,
                    staleness=policy,
                    launch="app",
                    budget=budget,
                    concurrency=args.concurrency,
                    proposer_latency=0.0,
                    train=args.train,
                    val=args.val,
                    heldout=args.heldout,
                    seed=seed,
                )
                result = run_gepa_cli(config, env)
                scores.append(100 * result["best_heldout"])
                used.append(result["rollouts"])
            rows.append(
                {
                    "budget": budget,
                    "mode": mode if mode == "sync_serial" else f"{mode} K={k} {policy}",
                    "heldout_mean": statistics.mean(scores),
                    "heldout_sd": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                    "heldout_per_seed": scores,
                    "rollouts_mean": statistics.mean(used),
                }
            )
            r = rows[-1]
            print(
                f"  {budget:5d} rollouts  {r['mode']:<36} heldout "
                f"{r['heldout_mean']:5.1f} ± {r['heldout_sd']:.1f}  "
                f"(used {r['rollouts_mean']:.0f})",
                flush=True,
            )
    return rows


def write_results(
    args: argparse.Namespace, rows: list[dict[str, Any]], qrows: list[dict[str, Any]]
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = RESULTS / "pipeline_throughput.json"
    command = " ".join(["python", "bench/pipeline_throughput.py", *sys.argv[1:]])
    quality_command = command
    if previous.exists() and (not rows or not qrows):
        # a run of one part keeps the other part's last results (and says which run)
        kept = json.loads(previous.read_text(encoding="utf-8"))
        kept_meta = kept.get("meta", {})
        if not qrows:
            quality_command = kept_meta.get("quality_command", kept_meta.get("command", ""))
        rows = rows or kept.get("throughput", [])
        qrows = qrows or kept.get("quality", [])
    load = os.getloadavg()
    meta = {
        "command": command,
        "quality_command": quality_command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average_at_end": [round(x, 2) for x in load],
        "latency_seconds": args.latency,
        "concurrency": args.concurrency,
        "budget": args.budget,
        "train": args.train,
        "val": args.val,
    }
    (RESULTS / "pipeline_throughput.json").write_text(
        json.dumps({"meta": meta, "throughput": rows, "quality": qrows}, indent=2) + "\n",
        encoding="utf-8",
    )
    lines = [
        "# Pipeline throughput (bench/pipeline_throughput.py)",
        "",
        f"`{meta['command']}` on {meta['machine']}, load average at the end "
        f"{meta['load_average_at_end']}.",
        f"Rollout latency {args.latency * 1000:g} ms, {args.concurrency} slots, budget "
        f"{args.budget} rollouts, train {args.train}, val {args.val}.",
        "",
        "| proposer latency | run | wall s | rollouts | proposals | ratio to ideal | "
        "faster than reference |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        speed = f"{r['speedup_vs_reference']:.2f}x" if r["speedup_vs_reference"] else "-"
        lines.append(
            f"| {r['proposer_latency']:g} s | {r['run']} | {r['wall_seconds']:.1f} | "
            f"{r['rollouts']} | {r['proposals']} | {r['ratio_to_ideal']:.2f} | {speed} |"
        )
    if qrows:
        lines += [
            "",
            f"Heldout accuracy (%, {len(args.quality_seeds)} seeds, {args.heldout} examples; "
            f"`{quality_command}`):",
            "",
            "| budget | mode | heldout mean ± sd | rollouts used |",
            "| --- | --- | --- | --- |",
        ]
        for q in qrows:
            lines.append(
                f"| {q['budget']} | {q['mode']} | {q['heldout_mean']:.1f} ± {q['heldout_sd']:.1f} "
                f"| {q['rollouts_mean']:.0f} |"
            )
    (RESULTS / "pipeline_throughput.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per rollout")
    parser.add_argument("--proposer-latency", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--in-flight", type=int, nargs="+", default=[16, 32, 64], help="K values of async_pipelined"
    )
    parser.add_argument("--launch", nargs="+", default=["app", "command"])
    parser.add_argument(
        "--staleness",
        nargs="+",
        default=["rebase"],
        help="staleness policies of async_pipelined in the quality runs",
    )
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--heldout", type=int, default=500)
    parser.add_argument("--quality-budgets", type=int, nargs="+", default=[2000, 3000])
    parser.add_argument("--quality-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    if not args.skip_reference:
        reference_env.ensure_environment(__file__)
    if not (args.data_dir / "train.csv").exists():
        raise SystemExit(f"{args.data_dir}: no train.csv (pass --data-dir)")
    with tempfile.TemporaryDirectory(prefix="gepa-pipeline-bench-") as tmp:
        work = Path(tmp)
        rows = [] if args.skip_throughput else throughput(args, work)
        qrows = [] if args.skip_quality else quality(args, work)
    write_results(args, rows, qrows)


if __name__ == "__main__":
    main()
