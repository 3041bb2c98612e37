"""Run pairs: every engine x budget x seed, then a table per pair and one for the suite.

    python bench/quality_<pair>.py [--budgets 1000 3000] [--seeds 0 1 2 3 4]
        [--engines gepa full default greedy] [--variant NAME='{"validation": ...}' ...]
        [--data-dir ../shared/data/banking77] [--val-cap 200] [--heldout-cap 500]
        [--crafter-steps 150] [--out bench/results]

Engines: `gepa` (the reference package, all defaults but the budget), `full` (gepa-cli
with `validation = "full"` and `minibatch_schedule = "fixed"`: the reference's
algorithm), `default` (gepa-cli with `GepaSettings()`'s defaults as they are when the
bench runs), `greedy` (engines.run_greedy, our default's minibatch size), and one
`gepa-cli NAME` per `--variant NAME=JSON`, whose JSON holds `[gepa]` fields laid over
the defaults. Each pair writes bench/results/quality_<key>.{md,json}; a run of more
than one pair also writes quality_suite.{md,json} with every pair's heldout table.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from quality.core import ROOT, Options, Pair, ProposeFn, Task

RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "banking77"
ENGINE_KEYS = ("gepa", "full", "default", "greedy")
REFERENCE = "gepa"
GREEDY = "greedy"
# the reference package's algorithm, spelled in our [gepa] fields
FULL_MODE = {"validation": "full", "minibatch_schedule": "fixed"}

EngineFn = Callable[[Task, ProposeFn, int, int], dict[str, Any]]


def ours_label(name: str) -> str:
    return f"gepa-cli {name}"


FULL_LABEL = ours_label("full")


# --- engines ---------------------------------------------------------------------------


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    name, sep, body = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f'--variant {spec!r}: write NAME=JSON, e.g. chain=\'{{"validation": "adaptive"}}\''
        )
    if name in ENGINE_KEYS:
        raise argparse.ArgumentTypeError(
            f"--variant {name!r}: that name is an engine of its own; pick another"
        )
    try:
        fields = json.loads(body)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--variant {name}: not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise argparse.ArgumentTypeError(f"--variant {name}: the JSON must be an object")
    return name, fields


def engines(keys: Sequence[str], variants: Sequence[tuple[str, dict[str, Any]]]) -> dict:
    """label -> (engine function, the [gepa] fields it lays over the defaults)."""
    from quality import engines as e

    def ours(fields: dict[str, Any]) -> EngineFn:
        def run(task: Task, propose: ProposeFn, budget: int, seed: int) -> dict[str, Any]:
            return e.run_ours(task, propose, budget, seed, e.ours_settings(budget, **fields))

        return run

    def greedy(task: Task, propose: ProposeFn, budget: int, seed: int) -> dict[str, Any]:
        size = e.default_minibatch(task, budget)
        return e.run_greedy(
            task, propose, budget, seed, minibatch_size=size, settings=e.ours_settings(budget)
        )

    table: dict[str, tuple[EngineFn, dict[str, Any] | None]] = {}
    for key in ENGINE_KEYS:
        if key not in keys:
            continue
        if key == REFERENCE:
            table[REFERENCE] = (e.run_reference, None)
        elif key == GREEDY:
            table[GREEDY] = (greedy, None)
        else:
            fields = dict(FULL_MODE) if key == "full" else {}
            table[ours_label(key)] = (ours(fields), fields)
    for name, fields in variants:
        table[ours_label(name)] = (ours(fields), fields)
    return table


def check_variants(variants: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Refuse a variant whose fields the config would refuse, before any run starts."""
    from quality.engines import ours_settings

    for name, fields in variants:
        try:
            ours_settings(1000, **fields)
        except Exception as exc:
            raise SystemExit(f"--variant {name}: {exc}") from None


def resolved_default(task: Task, budget: int) -> dict[str, Any]:
    """What `default` was when this ran: the engine settings and the minibatch size."""
    from quality.engines import default_minibatch, ours_settings

    settings = ours_settings(budget).to_dict()
    settings.pop("max_train_rollouts", None)
    return {"settings": settings, "minibatch": default_minibatch(task, budget)}


# --- running ---------------------------------------------------------------------------


def run_pair(
    pair: Pair,
    task: Task,
    args: argparse.Namespace,
    done: Callable[[list[dict[str, Any]], int], None],
) -> list[dict[str, Any]]:
    """Every engine x budget x seed; ``done(runs, total)`` after each run, so a long
    pair leaves its results so far on disk if it is stopped."""
    table = engines(args.engines, args.variant)
    budgets = args.budgets or list(pair.budgets)
    total = len(budgets) * len(table) * len(args.seeds)
    runs: list[dict[str, Any]] = []
    for budget in budgets:
        for label, (run, _fields) in table.items():
            for seed in args.seeds:
                outcome = run(task, pair.proposer(), budget, seed)
                runs.append({"engine": label, "budget": budget, "seed": seed, **outcome})
                done(runs, total)
                val = (
                    f"val {outcome['seed_val']:.3f}->{outcome['best_val']:.3f} "
                    if outcome["best_val"] is not None
                    else ""
                )
                print(
                    f"[{pair.key}] {label:18s} budget={budget} seed={seed} {val}"
                    f"heldout {outcome['seed_heldout']:.3f}->{outcome['best_heldout']:.3f} "
                    f"rollouts={outcome['evaluations']} {outcome['wall_seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
    return runs


def mean_sd(values: Sequence[float | None]) -> tuple[float, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.fmean(present), (statistics.stdev(present) if len(present) > 1 else 0.0)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    labels = list(dict.fromkeys(r["engine"] for r in runs))
    for budget in sorted({r["budget"] for r in runs}):
        for engine in labels:
            group = [r for r in runs if r["engine"] == engine and r["budget"] == budget]
            if not group:
                continue
            row: dict[str, Any] = {"engine": engine, "budget": budget, "runs": len(group)}
            for key in ("seed_val", "seed_heldout", "best_val", "best_heldout", "wall_seconds"):
                row[key] = mean_sd([r[key] for r in group])
            evals = [r["evaluations"] for r in group]
            row["evaluations"] = (statistics.fmean(evals), min(evals), max(evals))
            row["candidates"] = statistics.fmean(r["candidates"] for r in group)
            row["proposals"] = statistics.fmean(r["proposals"] for r in group)
            held = [r.get("held_on_validation") for r in group]
            row["held_on_validation"] = (
                None
                if any(h is None for h in held)
                else {k: sum(h.get(k, 0) for h in held) for k in ("children", "held", "changed")}
            )
            rows.append(row)
    return rows


# --- reports ---------------------------------------------------------------------------


def pct(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{100 * pair[0]:.1f} ± {100 * pair[1]:.1f}"


def held_cell(held: dict[str, int] | None) -> str:
    if not held or not held["children"]:
        return "-"
    return f"{100 * held['held'] / held['children']:.0f}% of {held['children']}"


def changed_cell(held: dict[str, int] | None) -> str:
    if not held or not held["children"] or "changed" not in held:
        return "-"
    return f"{held['changed'] / held['children']:.1f}"


def partial(meta: dict[str, Any]) -> bool:
    done, _, total = str(meta.get("runs_done", "")).partition(" of ")
    return done != total


def pair_markdown(pair: Pair, result: dict[str, Any]) -> str:
    meta, summary = result["meta"], result["summary"]
    facts = meta["task"]
    default = meta["default"]
    minibatch_rule = ", ".join(
        f"{k} = {json.dumps(default['settings'][k])}"
        for k in ("validation_policy", "minibatch_schedule", "minibatch_size")
        if k in default["settings"]
    )
    lines = [
        f"# Quality: {pair.title}",
        "",
        f"Command: `{meta['command']}`",
        "",
        *(
            [f"**Partial: {meta['runs_done']} runs so far.**", ""]
            if meta.get("runs_done", "").split(" of ")[0]
            != meta.get("runs_done", "").split(" of ")[-1]
            else []
        ),
        pair.about,
        "",
        f"Task: {facts['description']} Train {facts['train']}, val {facts['val']}, "
        f"heldout {facts['heldout']}.",
        "",
        f"Engines: `gepa` is the reference package (gepa {meta['versions']['gepa']}, all "
        "defaults but `max_metric_calls`); `gepa-cli full` is our engine with "
        '`validation = "full"`, `minibatch_schedule = "fixed"` (the reference\'s '
        f"algorithm); `gepa-cli default` is our engine with the defaults of gepa-cli "
        f"{meta['versions']['gepa-cli']} when this ran ({minibatch_rule}: a minibatch of "
        f"{default['minibatch']} here); `greedy` accepts a child whose minibatch sum beats "
        f"its parent's on the same minibatch ({default['minibatch']} examples) and never "
        "validates; its result is the last accepted text."
        + "".join(
            f" `{label}` lays `{json.dumps(fields)}` over the defaults."
            for label, fields in meta["variants"].items()
        ),
        "",
        f"Seeds {meta['seeds']}; Python {meta['python']}, {meta['cpus']} CPUs (shared: "
        "wall times are as measured, under whatever else the machine ran; the scores do "
        "not depend on it).",
        "",
        "Scores in % (mean ± sd over seeds). *Rollouts* are the train + val rollouts the "
        "search used (mean [min-max]), every one counted; the heldout evaluation of seed "
        f"and result ({2 * facts['heldout']} rollouts) is outside the budget for every "
        "engine, on the same heldout rows. Wall time includes it.",
        "",
        "*Held on val*: of the children accepted on their minibatch and then validated in "
        "full (all seeds), the share whose validation mean beats their parent's. *Val "
        f"changed*: on how many of the {facts['val']} validation examples such a child's "
        "score differs from its parent's, on average (the greedy loop never validates).",
        "",
        "| engine | budget | runs | seed heldout | best val | best heldout | rollouts "
        "| candidates | proposals | held on val | val changed | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary:
        ev_mean, ev_min, ev_max = row["evaluations"]
        lines.append(
            f"| {row['engine']} | {row['budget']} | {row['runs']} | {pct(row['seed_heldout'])} "
            f"| {pct(row['best_val'])} | **{pct(row['best_heldout'])}** "
            f"| {ev_mean:.0f} [{ev_min}-{ev_max}] | {row['candidates']:.1f} "
            f"| {row['proposals']:.1f} | {held_cell(row.get('held_on_validation'))} "
            f"| {changed_cell(row.get('held_on_validation'))} "
            f"| {row['wall_seconds'][0]:.1f} ± {row['wall_seconds'][1]:.1f} |"
        )
    gave_up = [r for r in result["runs"] if str(r["stopped_by"]).startswith("proposer_failures")]
    if gave_up:
        lines += [
            "",
            "Runs gepa-cli's engine ended with an error because the proposer failed or answered "
            "`unchanged` too many times in a row (`[gepa] max_consecutive_proposer_failures`); "
            "their result is the best validated candidate at that point, scored on heldout by "
            "the bench: "
            + "; ".join(f"{r['engine']} budget {r['budget']} seed {r['seed']}" for r in gave_up)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def suite_rows(results: Sequence[tuple[Pair, dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for pair, result in results:
        for budget in sorted({r["budget"] for r in result["summary"]}):
            at = {r["engine"]: r for r in result["summary"] if r["budget"] == budget}
            seed = next(iter(at.values()))["seed_heldout"]
            rows.append(
                {
                    "pair": pair.key,
                    "title": pair.title,
                    "budget": budget,
                    "seed_heldout": seed,
                    "val": result["meta"]["task"]["val"],
                    "heldout": {label: r["best_heldout"] for label, r in at.items()},
                    "rollouts": {label: r["evaluations"][0] for label, r in at.items()},
                    "wall_seconds": {label: r["wall_seconds"][0] for label, r in at.items()},
                    "held_on_validation": {
                        label: r.get("held_on_validation") for label, r in at.items()
                    },
                }
            )
    return rows


def suite_markdown(rows: list[dict[str, Any]], command: str) -> str:
    labels = list(dict.fromkeys(label for row in rows for label in row["heldout"]))
    lines = [
        "# Quality suite: heldout score of every pair",
        "",
        f"Command: `{command}`",
        "",
        "Heldout score in % (mean ± sd over seeds) of the result of each engine; the "
        "rollout budget counts train + val rollouts; *seed* is the seed text's heldout "
        "score. Each pair's own file "
        "(bench/results/quality_<pair>.md) has the rollouts used, candidates, proposals "
        "and wall times.",
        "",
        f"*Held on val* is the regime: of the children `{FULL_LABEL}` accepted on their "
        "minibatch and validated in full, the share that beat their parent on validation "
        "too (high: minibatch gains hold; low: they often do not); *val changed*, on how "
        "many validation examples such a child's score differs from its parent's, on "
        "average (of *val*).",
        "",
        "| pair | budget | seed | " + " | ".join(labels) + " | held on val | val changed | val |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in labels) + " | ---: | ---: | ---: |",
    ]
    for row in rows:
        cells = [pct(row["heldout"].get(label)) for label in labels]
        full = (row.get("held_on_validation") or {}).get(FULL_LABEL)
        lines.append(
            f"| {row['title']} | {row['budget']} | {100 * row['seed_heldout'][0]:.1f} | "
            + " | ".join(cells)
            + f" | {held_cell(full)} | {changed_cell(full)} | {row.get('val', '-')} |"
        )
    return "\n".join(lines) + "\n"


def write(out: Path, report: str, data: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(report, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# --- command line ----------------------------------------------------------------------


def parser(prog: str, pairs: Sequence[Pair]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    if len(pairs) > 1:
        p.add_argument(
            "--pairs",
            nargs="+",
            choices=[pair.key for pair in pairs],
            default=[pair.key for pair in pairs],
            help="the pairs to run (default: all)",
        )
    p.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        help="rollout budgets (default: each pair's own: "
        + "; ".join(f"{pair.key} {' '.join(map(str, pair.budgets))}" for pair in pairs)
        + ")",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--engines", nargs="+", choices=ENGINE_KEYS, default=list(ENGINE_KEYS))
    p.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="also run gepa-cli with these [gepa] fields over the defaults "
        '(repeatable), e.g. chain=\'{"validation": "adaptive"}\'',
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("BANKING77_DATA_DIR") or DEFAULT_DATA_DIR),
        help="Banking77 folder with train.csv (default: $BANKING77_DATA_DIR, else "
        "../shared/data/banking77 relative to the repository root)",
    )
    p.add_argument("--val-cap", type=int, default=200, help="Banking77 val rows (first N)")
    p.add_argument("--heldout-cap", type=int, default=500, help="Banking77 heldout rows (first N)")
    p.add_argument("--crafter-steps", type=int, default=150, help="Crafter episode step limit")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    if len(pairs) > 1:
        p.add_argument(
            "--tabulate",
            action="store_true",
            help="run nothing: rebuild quality_suite.{md,json} from the pairs' result files "
            "in --out (e.g. after running pairs one at a time)",
        )
    return p


def tabulate(chosen: Sequence[Pair], out: Path) -> int:
    """The suite table from the pairs' result files, as a run of all of them writes it."""
    results, commands = [], []
    for pair in chosen:
        path = out / f"quality_{pair.key}.json"
        if not path.is_file():
            print(f"{path}: missing (run bench/quality_{pair.key}.py); left out", file=sys.stderr)
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        results.append((pair, result))
        commands.append(result["meta"]["command"])
    if not results:
        raise SystemExit(f"no result files of these pairs in {out}")
    rows = suite_rows(results)
    command = "; ".join(dict.fromkeys(commands))
    report = suite_markdown(rows, command)
    write(out / "quality_suite", report, {"command": command, "rows": rows})
    print(report)
    return 0


def main(pairs: Sequence[Pair], script: str, argv: Sequence[str] | None = None) -> int:
    from reference_env import ensure_environment

    name = Path(script).name
    args = parser(f"python bench/{name}", pairs).parse_args(argv)
    by_key = {pair.key: pair for pair in pairs}
    chosen = list(pairs) if len(pairs) == 1 else [by_key[k] for k in dict.fromkeys(args.pairs)]
    if getattr(args, "tabulate", False):
        return tabulate(chosen, args.out)
    ensure_environment(script)
    check_variants(args.variant)
    options = Options(
        data_dir=args.data_dir.expanduser().resolve(),
        val_cap=args.val_cap,
        heldout_cap=args.heldout_cap,
        crafter_steps=args.crafter_steps,
    )
    command = f"python bench/{name} " + shlex.join(list(argv) if argv is not None else sys.argv[1:])
    versions = {
        "gepa": importlib.metadata.version("gepa"),
        "gepa-cli": importlib.metadata.version("gepa-cli"),
    }
    results: list[tuple[Pair, dict[str, Any]]] = []
    for pair in chosen:
        task = pair.load(options)
        print(
            f"[{pair.key}] train {len(task.train_ids)}, val {len(task.val_ids)}, "
            f"heldout {len(task.heldout_ids)}",
            file=sys.stderr,
        )
        started = time.perf_counter()

        def finished(
            runs: list[dict[str, Any]],
            total: int,
            pair: Pair = pair,
            task: Task = task,
            started: float = started,
        ) -> tuple[str, dict[str, Any]]:
            budgets = sorted({r["budget"] for r in runs})
            meta = {
                "pair": pair.key,
                "command": command.strip(),
                "seeds": args.seeds,
                "budgets": budgets,
                "runs_done": f"{len(runs)} of {total}",
                "task": {
                    **task.facts,
                    "train": len(task.train_ids),
                    "val": len(task.val_ids),
                    "heldout": len(task.heldout_ids),
                },
                "default": resolved_default(task, budgets[-1]),
                "variants": {ours_label(n): fields for n, fields in args.variant},
                "versions": versions,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "wall_seconds": time.perf_counter() - started,
            }
            result = {"meta": meta, "summary": summarize(runs), "runs": runs}
            report = pair_markdown(pair, result)
            write(args.out / f"quality_{pair.key}", report, result)
            return report, result

        runs = run_pair(pair, task, args, finished)
        report, result = finished(runs, len(runs))
        print(report)
        results.append((pair, result))
    if len(results) > 1:
        rows = suite_rows(results)
        report = suite_markdown(rows, command.strip())
        write(args.out / "quality_suite", report, {"command": command.strip(), "rows": rows})
        print(report)
    return 0
