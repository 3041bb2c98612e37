"""The dataset: Crafter world seeds, split into train, val and heldout.

A row is one episode to play: ``{"world_seed": 10003, "max_steps": 150}``. The world
seeds of the splits are disjoint ranges, so no heldout world is ever trained on.
``python -m crafter_task.data`` prints what each split's worlds hold.
"""

from __future__ import annotations

import json
from typing import Any

SPLITS = {"train": 24, "val": 8, "heldout": 12}
WORLD_SEED_BASE = {"train": 10_000, "val": 20_000, "heldout": 30_000}
DEFAULT_MAX_STEPS = 150
# the hard ceiling of one episode; a longer episode is a failed rollout, not a long one
MAX_STEPS_LIMIT = 1_000


class DataError(ValueError):
    pass


def world_seed(split: str, seed: int) -> int:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    if not 0 <= seed < SPLITS[split]:
        raise DataError(f"seed {seed} outside 0..{SPLITS[split] - 1} of split {split!r}")
    return WORLD_SEED_BASE[split] + seed


def row(split: str, seed: int) -> dict[str, Any]:
    return {
        "example_id": f"{split}:{seed}",
        "split": split,
        "seed": seed,
        "world_seed": world_seed(split, seed),
        "max_steps": DEFAULT_MAX_STEPS,
    }


def all_world_seeds() -> list[int]:
    return [world_seed(split, i) for split, size in SPLITS.items() for i in range(size)]


def main() -> int:
    from .worlds import fresh_world

    for split, size in SPLITS.items():
        for i in range(size):
            seed = world_seed(split, i)
            env = fresh_world(seed)
            counts: dict[str, int] = {}
            for obj in env._world.objects:
                name = type(obj).__name__.lower()
                counts[name] = counts.get(name, 0) + 1
            mats = {
                m: int(env._world.count(m))
                for m in ("tree", "water", "stone", "coal", "iron", "diamond", "lava")
            }
            print(json.dumps({"split": split, "seed": i, "world_seed": seed, **mats, **counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
