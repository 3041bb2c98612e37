"""One scored episode: play a world under a policy, then say what happened.

The reward is the share of Crafter's 22 achievements unlocked in the episode. The
objectives are the same share within each achievement group (``GROUPS``). The feedback
tells the reflection what was gained and missed, how the episode ended (death and its
cause, or the step limit), and the step after which nothing new was unlocked, with what
the agent did from then on. ``Episode.summary()`` is the same as data: the rollout's
``output``, which is what a proposer sees of the trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .facts import ACHIEVEMENTS
from .game import VITALS, Game, State, inventory_items, render_text

GROUPS: dict[str, tuple[str, ...]] = {
    "collect": tuple(a for a in ACHIEVEMENTS if a.startswith("collect_")),
    "place": tuple(a for a in ACHIEVEMENTS if a.startswith("place_")),
    "make": tuple(a for a in ACHIEVEMENTS if a.startswith("make_")),
    "survive": tuple(a for a in ACHIEVEMENTS if a.split("_")[0] in ("eat", "defeat", "wake")),
}
assert sorted(a for g in GROUPS.values() for a in g) == sorted(ACHIEVEMENTS)
# a stall is reported when at least this share of the episode brought nothing new
STALL_SHARE = 0.25


@dataclass
class Choice:
    """What a policy decided at one step, and what to record about it."""

    action: str
    note: str = ""  # which rule decided (offline) or the model's raw answer (LLM)
    rule: int | None = None
    messages: list[dict[str, Any]] | None = None


class Policy(Protocol):
    async def act(self, state: State, observation: str) -> Choice: ...


StepRecorder = Callable[..., Any]


@dataclass
class Episode:
    world_seed: int
    max_steps: int
    steps: int = 0
    unlocked_at: dict[str, int] = field(default_factory=dict)  # achievement -> step
    died: bool = False
    cause: str | None = None
    final: dict[str, int] = field(default_factory=dict)  # the last inventory
    damage: list[tuple[int, int, str]] = field(default_factory=list)  # (step, hp, cause)
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rules: list[int | None] = field(default_factory=list)

    @property
    def score(self) -> float:
        return len(self.unlocked_at) / len(ACHIEVEMENTS)

    def objectives(self) -> dict[str, float]:
        return {
            name: sum(a in self.unlocked_at for a in members) / len(members)
            for name, members in GROUPS.items()
        }

    @property
    def missed(self) -> list[str]:
        return [a for a in ACHIEVEMENTS if a not in self.unlocked_at]

    @property
    def last_progress(self) -> int:
        return max(self.unlocked_at.values(), default=0)

    @property
    def stalled_at(self) -> int | None:
        """The step after which nothing new came, when enough of the episode was left."""
        last = self.last_progress
        if self.steps - last >= max(1, round(STALL_SHARE * self.max_steps)):
            return last
        return None

    def ending(self) -> str:
        vitals = ", ".join(f"{k} {self.final.get(k, 0)}" for k in VITALS)
        if self.died:
            return f"died at step {self.steps} of {self.max_steps}, {self.cause} ({vitals})"
        return f"survived all {self.max_steps} steps ({vitals})"

    def after_stall(self) -> list[tuple[str, int]]:
        """What decided the steps after the stall, most frequent first."""
        start = self.stalled_at
        if start is None:
            return []
        counts = Counter(self.notes[start:])
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def feedback(self) -> str:
        got = sorted(self.unlocked_at, key=lambda a: (self.unlocked_at[a], a))
        lines = [
            f"Score {self.score:.3f}: {len(got)} of {len(ACHIEVEMENTS)} achievements"
            + (": " + ", ".join(f"{a} (step {self.unlocked_at[a]})" for a in got) if got else "")
            + ".",
            f"Missed: {', '.join(self.missed)}." if self.missed else "Missed: none.",
            f"Ending: {self.ending()}.",
        ]
        if self.damage:
            hurt = Counter(cause for _, _, cause in self.damage)
            lines.append(
                "Damage taken: "
                + ", ".join(f"{cause} x{n}" for cause, n in sorted(hurt.items()))
                + "."
            )
        stall = self.stalled_at
        if stall is not None:
            doing = "; ".join(f"{note} ({n} steps)" for note, n in self.after_stall()[:3])
            lines.append(
                f"Progress stalled after step {stall}: nothing new in the last "
                f"{self.steps - stall} steps, spent on: {doing}."
            )
        items = inventory_items(self.final)
        lines.append(
            "Inventory at the end: "
            + (", ".join(f"{k} {v}" for k, v in items.items()) or "empty")
            + "."
        )
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        return {
            "world_seed": self.world_seed,
            "steps": self.steps,
            "max_steps": self.max_steps,
            "achievements": dict(sorted(self.unlocked_at.items(), key=lambda kv: (kv[1], kv[0]))),
            "missed": self.missed,
            "died": self.died,
            "cause": self.cause,
            "stalled_at": self.stalled_at,
            "after_stall": [{"what": n, "steps": c} for n, c in self.after_stall()[:5]],
            "damage": [{"step": s, "health": h, "cause": c} for s, h, c in self.damage],
            "final": self.final,
            "actions": dict(sorted(Counter(self.actions).items())),
        }


async def play_episode(
    world_seed: int,
    max_steps: int,
    policy: Policy,
    record: StepRecorder,
    *,
    check: Callable[[], Any] | None = None,
    game: Game | None = None,
) -> Episode:
    """Play until death or ``max_steps``; every step goes to ``record`` (the trace).

    ``game`` is a prepared game of ``world_seed`` (tests set up situations with it).
    """
    game = game if game is not None else Game(world_seed)
    episode = Episode(world_seed, max_steps)
    state = game.state()
    while episode.steps < max_steps:
        if check is not None:
            check()
        observation = render_text(state, max_steps)
        choice = await policy.act(state, observation)
        result = game.step(choice.action)
        episode.steps = game.steps
        for name in result.unlocked:
            episode.unlocked_at[name] = game.steps
        if result.damage:
            episode.damage.append((game.steps, result.damage, result.cause or "damage"))
        episode.actions.append(choice.action)
        episode.notes.append(choice.note)
        episode.rules.append(choice.rule)
        info: dict[str, Any] = {"note": choice.note}
        if result.unlocked:
            info["unlocked"] = list(result.unlocked)
        if result.damage:
            info["damage"] = result.damage
        record(
            observation=observation,
            action=choice.action,
            reward=result.reward,
            messages=choice.messages,
            info=info,
        )
        if result.dead:
            episode.died, episode.cause = True, game.last_cause or "damage"
            break
        state = game.state()
    episode.final = {k: int(v) for k, v in game.player.inventory.items()}
    return episode
