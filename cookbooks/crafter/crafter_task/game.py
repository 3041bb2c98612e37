"""The real Crafter game, headless: one episode, the semantic state, its text form.

Every episode runs ``crafter.Env`` (the ``crafter`` package, 1.8.3) with its own rules:
creatures, day and night, hunger, thirst, fatigue, the 22 achievements. Its world comes
from ``worlds`` (crafter's generation, kept as snapshots) and it draws no pixels: the
agents read the semantic state, ``State``, restricted to crafter's 9x7 local view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from crafter import objects

from .facts import ACTIONS
from .worlds import HeadlessEnv, fresh_world, new_episode_env

VITALS = ("health", "food", "drink", "energy")
# crafter's local view: a 9x9 grid less the two rows it uses to draw the inventory
VIEW_W, VIEW_H = 9, 7
HALF_W, HALF_H = VIEW_W // 2, VIEW_H // 2

CREATURES = {
    objects.Cow: "cow",
    objects.Zombie: "zombie",
    objects.Skeleton: "skeleton",
    objects.Arrow: "arrow",
    objects.Plant: "plant",
    objects.Player: "player",
}
# one character a cell for the text view; the legend goes to the LLM with the view
MATERIAL_CHARS = {
    "grass": ".",
    "sand": ":",
    "path": "_",
    "water": "~",
    "stone": "#",
    "tree": "T",
    "lava": "%",
    "coal": "c",
    "iron": "i",
    "diamond": "D",
    "table": "t",
    "furnace": "f",
}
OBJECT_CHARS = {
    "player": "@",
    "cow": "C",
    "zombie": "Z",
    "skeleton": "S",
    "arrow": "*",
    "plant": "p",
    "ripe plant": "P",
}
OUTSIDE_CHAR = "X"
LEGEND = (
    ", ".join(f"{c} {m}" for m, c in MATERIAL_CHARS.items())
    + ", "
    + ", ".join(f"{c} {o}" for o, c in OBJECT_CHARS.items() if o != "player")
    + f", {OUTSIDE_CHAR} edge of the world; @ is you"
)
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@dataclass(frozen=True)
class Thing:
    """Something in view: a material cell or a creature, at an absolute position."""

    kind: str
    x: int
    y: int


@dataclass
class State:
    """What an agent may know at one step: the local view, its body, its inventory."""

    step: int
    pos: tuple[int, int]
    facing: tuple[int, int]
    inventory: dict[str, int]
    unlocked: frozenset[str]
    sleeping: bool
    daylight: float
    # view[row][col]: (material or None outside the world, creature kind or None);
    # row 0 is the top (north), the player is at (HALF_H, HALF_W)
    view: list[list[tuple[str | None, str | None]]]
    creatures: list[Thing] = field(default_factory=list)

    @property
    def night(self) -> bool:
        return self.daylight < 0.35

    def cell(self, x: int, y: int) -> tuple[str | None, str | None]:
        """The material and creature at absolute (x, y), or (None, None) out of view."""
        col, row = x - self.pos[0] + HALF_W, y - self.pos[1] + HALF_H
        if 0 <= row < VIEW_H and 0 <= col < VIEW_W:
            return self.view[row][col]
        return None, None

    @property
    def facing_cell(self) -> tuple[str | None, str | None]:
        return self.cell(self.pos[0] + self.facing[0], self.pos[1] + self.facing[1])

    def cells(self) -> list[tuple[int, int, str | None, str | None]]:
        """Every cell in view as (x, y, material, creature), row by row."""
        return self._cells

    @cached_property
    def _cells(self) -> list[tuple[int, int, str | None, str | None]]:
        x0, y0 = self.pos[0] - HALF_W, self.pos[1] - HALF_H
        return [
            (x0 + col, y0 + row, material, creature)
            for row, line in enumerate(self.view)
            for col, (material, creature) in enumerate(line)
        ]

    def visible(self, kind: str) -> list[Thing]:
        """Every ``kind`` in view (a material or a creature), nearest first."""
        if kind in MATERIAL_CHARS:
            found = [Thing(kind, x, y) for x, y, m, _ in self.cells() if m == kind]
        else:
            found = [c for c in self.creatures if c.kind == kind]
        return sorted(found, key=lambda t: (self.distance(t.x, t.y), t.y, t.x))

    def distance(self, x: int, y: int) -> int:
        return abs(x - self.pos[0]) + abs(y - self.pos[1])


@dataclass(frozen=True)
class StepResult:
    reward: float  # crafter's own reward: +1 per new achievement, health change / 10
    unlocked: tuple[str, ...]
    done: bool
    dead: bool
    damage: int
    cause: str | None  # what took health this step, when something did


class Game:
    """One episode of Crafter on a fixed world seed."""

    def __init__(self, world_seed: int) -> None:
        self.env: HeadlessEnv = new_episode_env(world_seed)
        self.world_seed = world_seed
        self.world = self.env._world
        self.player = self.env._player
        self.steps = 0
        self.last_cause: str | None = None

    @property
    def unlocked(self) -> frozenset[str]:
        return frozenset(self.env._unlocked)

    def state(self) -> State:
        world, player = self.world, self.player
        px, py = int(player.pos[0]), int(player.pos[1])
        x0, y0 = px - HALF_W, py - HALF_H
        width, height = world.area
        xa, xb = max(x0, 0), min(x0 + VIEW_W, width)
        ya, yb = max(y0, 0), min(y0 + VIEW_H, height)
        names = world._mat_names
        mats = world._mat_map[xa:xb, ya:yb].tolist()  # [x][y]
        view: list[list[tuple[str | None, str | None]]] = []
        for row in range(VIEW_H):
            y = y0 + row
            line: list[tuple[str | None, str | None]] = []
            for col in range(VIEW_W):
                x = x0 + col
                if xa <= x < xb and ya <= y < yb:
                    line.append((names[mats[x - xa][y - ya]], None))
                else:
                    line.append((None, None))
            view.append(line)
        creatures: list[Thing] = []
        found = world._obj_map[xa:xb, ya:yb]
        for i, j in zip(*(a.tolist() for a in found.nonzero()), strict=True):
            obj = world._objects[int(found[i, j])]
            kind = CREATURES.get(type(obj), "unknown")
            if kind == "plant" and obj.ripe:
                kind = "ripe plant"
            x, y = xa + i, ya + j
            material = view[y - y0][x - x0][0]
            view[y - y0][x - x0] = (material, kind)
            if kind != "player":
                creatures.append(Thing(kind, x, y))
        creatures.sort(key=lambda t: (t.y, t.x))
        return State(
            step=self.steps,
            pos=(px, py),
            facing=(int(player.facing[0]), int(player.facing[1])),
            inventory={k: int(v) for k, v in player.inventory.items()},
            unlocked=self.unlocked,
            sleeping=bool(player.sleeping),
            daylight=float(world.daylight),
            view=view,
            creatures=creatures,
        )

    def step(self, action: str) -> StepResult:
        if action not in ACTIONS:
            raise ValueError(f"unknown Crafter action {action!r}; actions: {', '.join(ACTIONS)}")
        player = self.player
        health = int(player.health)
        before = self.unlocked
        # a zombie can hit and be despawned in one step: look around before it, too
        threats = self._threats()
        _obs, reward, done, _info = self.env.step(ACTIONS.index(action))
        self.steps += 1
        damage = max(0, health - int(player.health))
        cause = None
        if damage:
            after = self._threats()
            near = {k: min(threats.get(k, 99), after.get(k, 99)) for k in {*threats, *after}}
            cause = self._cause(near)
            self.last_cause = cause
        dead = int(player.health) <= 0
        return StepResult(
            reward=round(float(reward), 6),
            unlocked=tuple(sorted(self.unlocked - before)),
            done=bool(done),
            dead=dead,
            damage=damage,
            cause=cause,
        )

    def _threats(self, reach: int = 8) -> dict[str, int]:
        """The distance of the nearest zombie, skeleton and arrow within ``reach``."""
        world, (px, py) = self.world, (int(self.player.pos[0]), int(self.player.pos[1]))
        xa, ya = max(px - reach, 0), max(py - reach, 0)
        found = world._obj_map[xa : px + reach + 1, ya : py + reach + 1]
        near: dict[str, int] = {}
        for i, j in zip(*(a.tolist() for a in found.nonzero()), strict=True):
            kind = CREATURES.get(type(world._objects[int(found[i, j])]))
            if kind in ("zombie", "skeleton", "arrow"):
                d = abs(xa + i - px) + abs(ya + j - py)
                near[kind] = min(d, near.get(kind, d))
        return near

    def _cause(self, near: Mapping[str, int]) -> str:
        """What most likely took health this step (for the feedback on a death)."""
        player, world = self.player, self.world
        if world[player.pos][0] == "lava":
            return "lava"
        if near.get("zombie", 99) <= 2:
            return "zombie"
        if near.get("arrow", 99) <= 2 or near.get("skeleton", 99) <= 8:
            return "skeleton arrow"
        lacking = [
            word
            for item, word in (("food", "hunger"), ("drink", "thirst"), ("energy", "exhaustion"))
            if player.inventory[item] <= 0
        ]
        return " and ".join(lacking) if lacking else "damage"


def nearest_text(state: State, limit: int = 6) -> str:
    """The nearest thing of each interesting kind, as relative directions."""
    px, py = state.pos
    seen: dict[str, tuple[int, int, int]] = {}
    for x, y, material, creature in state.cells():
        d = abs(x - px) + abs(y - py)
        for kind in (creature, material):
            if kind is None or kind in _PLAIN:
                continue
            best = seen.get(kind)
            if best is None or d < best[0]:
                seen[kind] = (d, x, y)
    ranked = sorted(seen.items(), key=lambda kv: (kv[1][0], kv[0]))[:limit]
    parts = [f"{kind} {relative(state, x, y)}" for kind, (_, x, y) in ranked]
    return "; ".join(parts) if parts else "nothing but open ground"


_PLAIN = frozenset(("grass", "sand", "path", "player"))


def relative(state: State, x: int, y: int) -> str:
    dx, dy = x - state.pos[0], y - state.pos[1]
    bits = []
    if dx:
        bits.append(f"{abs(dx)} {'right' if dx > 0 else 'left'}")
    if dy:
        bits.append(f"{abs(dy)} {'down' if dy > 0 else 'up'}")
    return " ".join(bits) or "here"


def facing_name(state: State) -> str:
    for name, vec in DIRECTIONS.items():
        if vec == state.facing:
            return name
    return "?"


def render_text(state: State, max_steps: int | None = None) -> str:
    """The observation as text: status, inventory, the 9x7 local view, what is near."""
    material, creature = state.facing_cell
    ahead = creature or material or "the edge of the world"
    time = "night" if state.night else "day"
    steps = f"{state.step}/{max_steps}" if max_steps else str(state.step)
    vitals = ", ".join(f"{k} {state.inventory[k]}" for k in VITALS)
    items = [f"{k} {v}" for k, v in state.inventory.items() if k not in VITALS and v > 0]
    rows = []
    for line in state.view:
        chars = []
        for mat, crt in line:
            if crt is not None:
                chars.append(OBJECT_CHARS.get(crt, "?"))
            elif mat is None:
                chars.append(OUTSIDE_CHAR)
            else:
                chars.append(MATERIAL_CHARS.get(mat, "?"))
        rows.append("".join(chars))
    sleeping = " You are asleep." if state.sleeping else ""
    return (
        f"Step {steps}, {time}. You face {facing_name(state)}: {ahead}.{sleeping}\n"
        f"{vitals}. Inventory: {', '.join(items) or 'empty'}.\n"
        + "\n".join(rows)
        + f"\nNear: {nearest_text(state)}."
    )


def inventory_items(inventory: Mapping[str, int]) -> dict[str, int]:
    """The inventory without the vitals, only what the player holds."""
    return {k: v for k, v in inventory.items() if k not in VITALS and v > 0}


def describe_world(world_seed: int) -> dict[str, Any]:
    """What a world holds in total (for data info and tests), from its fresh state."""
    env = fresh_world(world_seed)
    counts = {m: int(env._world.count(m)) for m in MATERIAL_CHARS if m in env._world._mat_ids}
    kinds: dict[str, int] = {}
    for obj in env._world.objects:
        kind = CREATURES.get(type(obj), "unknown")
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"world_seed": world_seed, "materials": counts, "creatures": kinds}
