"""Episodes: deterministic, scored by achievements, explained by their feedback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from crafter import objects
from crafter_support import Trace
from crafter_task.agent import OfflinePolicy
from crafter_task.episode import GROUPS, Episode, play_episode
from crafter_task.facts import ACHIEVEMENTS
from crafter_task.game import Game
from crafter_task.seed import SEED_PLAYBOOK

WORLD = 10_000
STRONG = """\
- when zombie within 2: attack zombie
- when drink < 4: drink water
- place table
- make wood pickaxe
- make wood sword
- when missing collect_drink: drink water
- when missing collect_sapling: collect sapling
- place plant
- when wood < 5: collect wood
- when stone < 5: collect stone
- explore
"""


def play(
    text: str, world: int = WORLD, steps: int = 120, game: Game | None = None
) -> tuple[Episode, Trace]:
    trace = Trace()
    episode = asyncio.run(play_episode(world, steps, OfflinePolicy(text), trace, game=game))
    return episode, trace


def digest(episode: Episode, trace: Trace) -> str:
    blob = json.dumps([episode.summary(), trace.steps], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def test_episode_is_deterministic_for_a_world_and_candidate() -> None:
    first, trace_a = play(STRONG)
    second, trace_b = play(STRONG)
    assert trace_a.steps == trace_b.steps and first.summary() == second.summary()
    assert len(trace_a.steps) == first.steps == 120
    step = trace_a.steps[0]
    assert set(step) == {"observation", "action", "reward", "messages", "info"}
    assert str(step["observation"]).startswith("Step 0/120, day.")
    # another world plays another game
    other, _ = play(STRONG, world=WORLD + 1)
    assert other.summary() != first.summary()


def test_episode_is_deterministic_across_processes(cookbook_dir: Path) -> None:
    """Crafter orders creatures by memory address; the worlds here do not."""
    episode, trace = play(STRONG)
    code = (
        "import asyncio, hashlib, json\n"
        "from crafter_task.agent import OfflinePolicy\n"
        "from crafter_task.episode import play_episode\n"
        "steps = []\n"
        f"e = asyncio.run(play_episode({WORLD}, 120, OfflinePolicy({STRONG!r}), "
        "lambda **s: steps.append(s)))\n"
        "print(hashlib.sha256(json.dumps([e.summary(), steps], sort_keys=True).encode())"
        ".hexdigest())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cookbook_dir, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == digest(episode, trace)


def test_score_objectives_and_feedback() -> None:
    episode, trace = play(STRONG)
    got = set(episode.unlocked_at)
    assert {"collect_wood", "place_table", "make_wood_pickaxe"} <= got
    assert episode.score == pytest.approx(len(got) / 22)
    objectives = episode.objectives()
    assert set(objectives) == set(GROUPS) == {"collect", "place", "make", "survive"}
    for name, members in GROUPS.items():
        assert objectives[name] == pytest.approx(len(got & set(members)) / len(members))
    feedback = episode.feedback()
    assert feedback.startswith(f"Score {episode.score:.3f}: {len(got)} of 22 achievements")
    assert f"place_table (step {episode.unlocked_at['place_table']})" in feedback
    assert "Missed: " in feedback and "collect_diamond" in feedback
    # the trace's rewards are crafter's: +1 on the step of each new achievement
    unlocked_steps = [s for s in trace.steps if s["info"].get("unlocked")]  # type: ignore[union-attr]
    assert sum(len(s["info"]["unlocked"]) for s in unlocked_steps) == len(got)  # type: ignore[index]
    assert all(float(s["reward"]) >= 0.8 for s in unlocked_steps)  # type: ignore[arg-type]
    summary = episode.summary()
    assert summary["achievements"] == episode.unlocked_at
    assert set(summary["missed"]) == set(ACHIEVEMENTS) - got
    json.dumps(summary)  # plain data: it is the rollout's output


def test_stall_is_reported_with_what_the_agent_did() -> None:
    episode, _ = play(SEED_PLAYBOOK)
    assert list(episode.unlocked_at) == ["collect_wood"]
    stall = episode.stalled_at
    assert stall == episode.unlocked_at["collect_wood"]
    feedback = episode.feedback()
    assert f"Progress stalled after step {stall}: nothing new in the last {120 - stall} steps" in (
        feedback
    )
    assert "rule 2: explore" in feedback
    assert "Ending: survived all 120 steps" in feedback


def test_death_by_lava() -> None:
    game = Game(WORLD)
    x, y = (int(v) for v in game.player.pos)
    game.world[(x - 1, y)] = "lava"
    episode, trace = play("- move left", game=game)
    assert episode.died and episode.cause == "lava" and episode.steps == 1
    assert len(trace.steps) == 1
    assert "Ending: died at step 1 of 120, lava" in episode.feedback()


def test_death_by_zombies() -> None:
    game = Game(WORLD)
    x, y = (int(v) for v in game.player.pos)
    for pos in ((x + 1, y), (x, y + 1), (x - 1, y), (x, y - 1)):
        if game.world[pos][1] is None:
            game.world[pos] = "grass"
            game.world.add(objects.Zombie(game.world, pos, game.player))
    episode, _ = play("- noop", game=game)
    assert episode.died and episode.cause == "zombie"
    assert episode.damage and {c for _, _, c in episode.damage} == {"zombie"}
    assert f"died at step {episode.steps} of 120, zombie" in episode.feedback()
    assert "Damage taken: zombie x" in episode.feedback()


def test_death_by_thirst() -> None:
    game = Game(WORLD)
    game.player.inventory["drink"] = 0
    game.player.health = 1
    episode, _ = play("- noop", game=game)
    assert episode.died and episode.cause == "thirst"
    assert episode.final["drink"] == 0


def test_step_recorder_overrun_stops_the_episode() -> None:
    trace = Trace(limit=10)
    with pytest.raises(RuntimeError, match="step limit 10"):
        asyncio.run(play_episode(WORLD, 50, OfflinePolicy(STRONG), trace))
    assert len(trace.steps) == 10
