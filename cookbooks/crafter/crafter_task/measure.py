"""Measure the cookbook: what one episode step costs, and what a whole run achieves.

From ``cookbooks/crafter``::

    python -m crafter_task.measure costs            # per-step costs of an offline episode
    python -m crafter_task.measure runs --seeds 0 1 2   # gepa.toml once per run seed

``runs`` executes the config with the library API (``GepaRun``), with ``[run] seed``
set to each run seed and the cache off, so every number comes from a live run; it
prints the seed's and the best candidate's heldout score, the rollouts and the wall
time of each run, their mean, and the machine's load average (the machine may be
shared: wall times are inflated by the load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .agent import Agent
from .data import DEFAULT_MAX_STEPS, world_seed
from .game import Game, render_text
from .playbook import Playbook
from .worlds import fresh_world, generate, new_episode_env

COOKBOOK = Path(__file__).resolve().parents[1]
# a playbook that crafts and survives: episodes of it walk, fight and craft
WORKOUT = """\
- when zombie within 2: attack zombie
- when drink < 4: drink water
- place table
- make wood pickaxe
- make wood sword
- when missing place_furnace: place furnace
- make stone pickaxe
- when missing collect_drink: drink water
- when missing collect_sapling: collect sapling
- place plant
- when wood < 5: collect wood
- when stone < 5: collect stone
- explore
"""
T = TypeVar("T")


def _timed(clock: dict[str, float], name: str, fn: Callable[..., T], *args: Any) -> T:
    started = time.perf_counter()
    value = fn(*args)
    clock[name] = clock.get(name, 0.0) + time.perf_counter() - started
    return value


def step_costs(worlds: int = 4, steps: int = DEFAULT_MAX_STEPS) -> dict[str, float]:
    """Mean microseconds per step of each part of an offline episode, and world costs."""
    clock: dict[str, float] = {}
    played = 0
    for i in range(worlds):
        seed = world_seed("train", i)
        fresh_world(seed)  # restored from the stored snapshot: timed below
        game = _timed(clock, "episode copy", Game, seed)
        agent = Agent(Playbook.parse(WORKOUT))
        for _ in range(steps):
            state = _timed(clock, "semantic state", game.state)
            _timed(clock, "text observation", render_text, state, steps)
            decision = _timed(clock, "agent decision", agent.decide, state)
            result = _timed(clock, "env step", game.step, decision.action)
            played += 1
            if result.dead:
                break
    per_step = {k: 1e6 * v / played for k, v in clock.items() if k != "episode copy"}
    per_step["episode copy"] = 1e6 * clock["episode copy"] / worlds
    started = time.perf_counter()
    new_episode_env(world_seed("val", 0))
    per_step["world restore (first use)"] = 1e6 * (time.perf_counter() - started)
    started = time.perf_counter()
    generate(world_seed("val", 1))
    per_step["world generation (crafter)"] = 1e6 * (time.perf_counter() - started)
    return per_step


def run_seeds(config: Path, seeds: Sequence[int], output_dir: Path) -> list[dict[str, Any]]:
    from gepa_cli.config.load import load_config
    from gepa_cli.runner.run import GepaRun

    rows = []
    for seed in seeds:
        overrides = {
            "run.seed": seed,
            "run.run_id": f"measure-seed{seed}-{int(time.time())}",
            "run.output_dir": str(output_dir),
            "cache.mode": "off",
        }
        started = time.perf_counter()
        result = GepaRun(load_config(config, overrides=overrides), config_path=config).execute()
        wall = time.perf_counter() - started
        seed_c, best_c = result.seed_candidate or {}, result.best_candidate or {}
        rows.append(
            {
                "run_seed": seed,
                "state": result.state,
                "seed_heldout": seed_c.get("heldout_mean"),
                "best_heldout": best_c.get("heldout_mean"),
                "best_id": best_c.get("id"),
                "rollouts": ((result["budget"] or {}).get("rollouts") or {}).get("total"),
                "wall_s": wall,
                "run_dir": str(result.run_dir),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crafter_task.measure", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    costs = sub.add_parser("costs", help="per-step costs of offline episodes")
    costs.add_argument("--worlds", type=int, default=4)
    runs = sub.add_parser("runs", help="run a config once per run seed")
    runs.add_argument("--config", type=Path, default=COOKBOOK / "gepa.toml")
    runs.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runs.add_argument("--output-dir", type=Path, default=COOKBOOK / "runs" / "measure")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    if args.command == "costs":
        for name, us in step_costs(args.worlds).items():
            unit = f"{us / 1000:9.1f} ms" if us >= 10_000 else f"{us:9.0f} us"
            print(f"{name:28s}{unit}")
    else:
        rows = run_seeds(args.config.resolve(), args.seeds, args.output_dir.resolve())
        print("| run seed | seed heldout | best heldout | gain | rollouts | wall s |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            gain = r["best_heldout"] - r["seed_heldout"]
            print(
                f"| {r['run_seed']} | {r['seed_heldout']:.3f} | {r['best_heldout']:.3f} "
                f"({r['best_id']}) | {gain:+.3f} | {r['rollouts']} | {r['wall_s']:.1f} |"
            )
        gains = [r["best_heldout"] - r["seed_heldout"] for r in rows]
        print(
            f"mean gain {statistics.mean(gains):+.3f} over {len(rows)} run seeds; "
            f"mean wall {statistics.mean(r['wall_s'] for r in rows):.1f} s"
        )
    after = os.getloadavg()
    print(
        f"load average (1 min) before {load[0]:.2f}, after {after[0]:.2f}, "
        f"on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
