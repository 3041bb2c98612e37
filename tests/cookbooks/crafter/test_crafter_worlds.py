"""Stored worlds are crafter's own generation, restored exactly."""

from __future__ import annotations

import numpy as np
from crafter import objects
from crafter_task import worlds
from crafter_task.data import SPLITS, all_world_seeds, world_seed


def play(env: worlds.HeadlessEnv, steps: int = 150) -> list[tuple[object, ...]]:
    rng = np.random.RandomState(7)
    out = []
    for _ in range(steps):
        _, reward, done, _ = env.step(int(rng.randint(0, 17)))
        player = env._player
        out.append(
            (
                reward,
                done,
                tuple(int(v) for v in player.pos),
                player.health,
                tuple(sorted(player.inventory.items())),
                tuple((type(o).__name__, *map(int, o.pos)) for o in env._world.objects),
                int(env._world._mat_map.sum()),
            )
        )
    return out


def test_stored_world_is_crafters_generation_and_plays_the_same() -> None:
    seed = world_seed("heldout", 0)
    generated = worlds.generate(seed)
    snap = worlds.snapshot(generated)
    stored = worlds.load_snapshots(worlds.SNAPSHOT_FILE)[seed]
    assert worlds.same_snapshot(stored, snap)
    restored = worlds.restore(seed, stored)
    assert worlds.same_snapshot(worlds.snapshot(restored), snap)
    assert play(restored) == play(generated)


def test_stored_worlds_cover_the_dataset() -> None:
    stored = worlds.load_snapshots(worlds.SNAPSHOT_FILE)
    assert sorted(stored) == sorted(all_world_seeds())
    assert len(stored) == sum(SPLITS.values())
    for snap in stored.values():
        assert snap["materials"].shape == (64, 64)
        assert len(snap["kinds"]) == len(snap["positions"]) > 0


def test_fresh_world_is_cached_and_episodes_get_private_copies() -> None:
    seed = world_seed("train", 5)
    assert worlds.fresh_world(seed) is worlds.fresh_world(seed)
    a, b = worlds.new_episode_env(seed), worlds.new_episode_env(seed)
    assert a._world is not b._world and a._textures is b._textures
    a.step(1)
    assert a._step == 1 and b._step == 0 and worlds.fresh_world(seed)._step == 0


def test_chunks_keep_creatures_in_insertion_order() -> None:
    env = worlds.new_episode_env(world_seed("train", 1))
    for chunk in env._world.chunks.values():
        assert isinstance(chunk, worlds.OrderedObjects)
    bag = worlds.OrderedObjects()
    cows = [objects.Cow(env._world, (0, i)) for i in range(5)]
    for cow in reversed(cows):
        bag.add(cow)
    bag.remove(cows[2])
    assert list(bag) == [cows[4], cows[3], cows[1], cows[0]] and len(bag) == 4
    assert cows[1] in bag and cows[2] not in bag
