"""The offline policy: a deterministic agent that follows the playbook, rule by rule.

It sees what the text observation shows (crafter's 9x7 local view, the body, the
inventory) and remembers the materials of the cells it has seen, so it can walk back to
a table or a lake out of view. Creatures are known only while in view. Everything it
does comes from the rules: with no rule that applies it waits.

Each directive turns into one action, or into ``None`` when it cannot act now (then the
next rule decides). Walking is a breadth-first search over remembered walkable cells
(never lava) within ``SEARCH_RADIUS`` steps; facing a cell that cannot be entered is a
move toward it, as in the game.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .episode import Choice
from .facts import COLLECT, MAKE, MAX_ITEM, PLACE, WALKABLE
from .game import State
from .playbook import Directive, Playbook, Rule

SEARCH_RADIUS = 10
EXPLORE_LEG = 12  # steps in one direction before exploring reconsiders
MOVES = {(-1, 0): "move_left", (1, 0): "move_right", (0, -1): "move_up", (0, 1): "move_down"}
ORDER = ((0, -1), (1, 0), (0, 1), (-1, 0))  # up, right, down, left: ties go in this order
STATION_RANGE = 6  # a table or furnace this close counts as "already placed"


@dataclass
class Decision:
    action: str
    rule: Rule | None  # the rule that decided, None when none did (the agent waited)


@dataclass
class Memory:
    materials: dict[tuple[int, int], str] = field(default_factory=dict)
    where: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # material -> cells
    explore_dir: tuple[int, int] = (0, -1)
    explore_left: int = 0
    visits: dict[tuple[int, int], int] = field(default_factory=dict)

    def update(self, state: State) -> None:
        materials, where = self.materials, self.where
        for x, y, material, _ in state.cells():
            if material is None:
                continue
            old = materials.get((x, y))
            if old != material:
                if old is not None:
                    where[old].discard((x, y))
                materials[(x, y)] = material
                where.setdefault(material, set()).add((x, y))
        self.visits[state.pos] = self.visits.get(state.pos, 0) + 1

    def known(self, kind: str) -> set[tuple[int, int]]:
        return self.where.get(kind, set())


def around(
    cells: Iterable[tuple[int, int]], reach: int = 1, square: bool = False
) -> set[tuple[int, int]]:
    """The cells next to any of ``cells`` (4-neighbours, or the 3x3 square)."""
    if square:
        offsets = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
    else:
        offsets = list(ORDER)
    return {(x + dx * reach, y + dy * reach) for x, y in cells for dx, dy in offsets}


class Step:
    """One decision: the state, the memory and a lazily computed walking map."""

    def __init__(self, state: State, memory: Memory) -> None:
        self.s, self.m = state, memory
        self.blocked = {(c.x, c.y) for c in state.creatures}
        self._dist: dict[tuple[int, int], int] | None = None
        self._first: dict[tuple[int, int], tuple[int, int]] = {}

    def walkable(self, pos: tuple[int, int]) -> bool:
        return self.m.materials.get(pos) in WALKABLE and pos not in self.blocked

    def _search(self) -> dict[tuple[int, int], int]:
        """Steps to every reachable remembered cell, and the first move toward it."""
        if self._dist is None:
            start = self.s.pos
            dist, first = {start: 0}, self._first
            materials, blocked = self.m.materials, self.blocked
            queue = deque([start])
            while queue:
                cur = queue.popleft()
                d = dist[cur]
                if d >= SEARCH_RADIUS:
                    continue
                cx, cy = cur
                for dx, dy in ORDER:
                    nxt = (cx + dx, cy + dy)
                    if nxt in dist or materials.get(nxt) not in WALKABLE or nxt in blocked:
                        continue
                    dist[nxt] = d + 1
                    first[nxt] = (dx, dy) if cur == start else first[cur]
                    queue.append(nxt)
            self._dist = dist
        return self._dist

    def go_next_to(self, targets: Iterable[tuple[int, int]]) -> str | None:
        """Act on the nearest target: 'do' when facing it, else turn or walk toward it."""
        targets = set(targets)
        if not targets:
            return None
        x, y = self.s.pos
        fx, fy = self.s.facing
        if (x + fx, y + fy) in targets:
            return "do"
        for d in ORDER:
            if (x + d[0], y + d[1]) in targets:
                return MOVES[d]  # the target blocks the way: this only turns to face it
        return self.walk_to(around(targets))

    def walk_to(self, cells: set[tuple[int, int]]) -> str | None:
        """The first move of a shortest path to one of ``cells`` (ties: north, then west)."""
        dist = self._search()
        small, large = (cells, dist) if len(cells) < len(dist) else (dist, cells)
        best: tuple[tuple[int, int, int], tuple[int, int]] | None = None
        for cell in small:
            if cell not in large:
                continue
            d = dist[cell]
            key = (d, cell[1], cell[0])
            if d and (best is None or key < best[0]):
                best = (key, cell)
        if best is None:
            return None
        return MOVES[self._first[best[1]]]


class Agent:
    """Plays by a playbook. Deterministic: same rules and same states, same actions."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.memory = Memory()

    def decide(self, state: State) -> Decision:
        self.memory.update(state)
        step = Step(state, self.memory)
        for rule in self.playbook.rules:
            if not rule.applies(state):
                continue
            action = self.plan(rule.directive, step)
            if action is not None:
                return Decision(action, rule)
        return Decision("noop", None)

    def plan(self, d: Directive, step: Step) -> str | None:
        s = step.s
        inv = s.inventory
        if d.verb == "action":
            return d.target
        if d.verb == "sleep":
            return "sleep" if inv["energy"] < MAX_ITEM["energy"] else None
        if d.verb == "explore":
            return self.explore(step)
        if d.verb == "collect":
            info = COLLECT[d.target]
            item = next(iter(info["receive"]))
            if inv.get(item, 0) >= MAX_ITEM[item]:
                return None
            if any(inv.get(k, 0) < v for k, v in info["require"].items()):
                return None
            if d.target == "grass":
                return self.forage(step)
            return step.go_next_to(self.memory.known(d.target))
        if d.verb in ("eat", "attack"):
            kinds = ("ripe plant",) if d.target == "plant" else (d.target,)
            found = [(c.x, c.y) for c in s.creatures if c.kind in kinds]
            return step.go_next_to(found)
        if d.verb == "flee":
            return self.flee(step, d.target)
        if d.verb == "place":
            return self.place(step, d.target)
        if d.verb == "make":
            return self.make(step, d.target)
        raise AssertionError(d.verb)

    def forage(self, step: Step) -> str | None:
        """Saplings come from hitting grass (one time in ten)."""
        x, y = step.s.pos
        fx, fy = step.s.facing
        material, creature = step.s.cell(x + fx, y + fy)
        if material == "grass" and creature is None:
            return "do"
        for dx, dy in ORDER:
            if step.s.cell(x + dx, y + dy) == ("grass", None):
                return MOVES[(dx, dy)]
        return step.walk_to(step.m.known("grass"))

    def place(self, step: Step, name: str) -> str | None:
        s = step.s
        info = PLACE[name]
        if any(s.inventory.get(k, 0) < v for k, v in info["uses"].items()):
            return None
        if name in ("table", "furnace") and self.station_near(s, name):
            return None
        if name == "furnace":
            tables = self.stations(s, "table")
            if tables and not any(s.distance(*t) <= 1 for t in tables):
                # next to a table first, so both are in reach for iron tools
                action = step.go_next_to(tables)
                if action is not None:
                    return action
        where = set(info["where"])
        x, y = s.pos
        fx, fy = s.facing
        material, creature = s.cell(x + fx, y + fy)
        if material in where and creature is None:
            return f"place_{name}"
        for dx, dy in ORDER:
            material, creature = s.cell(x + dx, y + dy)
            if material in where and creature is None:
                return MOVES[(dx, dy)]
        return None

    def stations(self, s: State, name: str) -> list[tuple[int, int]]:
        return [p for p in self.memory.known(name) if s.distance(*p) <= STATION_RANGE]

    def station_near(self, s: State, name: str) -> bool:
        return bool(self.stations(s, name))

    def make(self, step: Step, tool: str) -> str | None:
        s = step.s
        info = MAKE[tool]
        if s.inventory.get(tool, 0) >= 1:
            return None
        if any(s.inventory.get(k, 0) < v for k, v in info["uses"].items()):
            return None
        reach: set[tuple[int, int]] | None = None
        for station in info["nearby"]:
            cells = around(self.memory.known(station), square=True)
            reach = cells if reach is None else reach & cells
        if not reach:
            return None
        if s.pos in reach:
            return f"make_{tool}"
        return step.walk_to(reach)

    def flee(self, step: Step, kind: str) -> str | None:
        s = step.s
        threats = [(c.x, c.y) for c in s.creatures if c.kind == kind]
        if not threats:
            return None

        def nearest(p: tuple[int, int]) -> int:
            return min(abs(p[0] - t[0]) + abs(p[1] - t[1]) for t in threats)

        here = nearest(s.pos)
        best, best_d = None, here
        for d in ORDER:
            nxt = (s.pos[0] + d[0], s.pos[1] + d[1])
            if step.walkable(nxt) and nearest(nxt) > best_d:
                best, best_d = d, nearest(nxt)
        return MOVES[best] if best else None

    def explore(self, step: Step) -> str:
        """Walk toward the least known side; keep a heading for a while."""
        s, m = step.s, self.memory
        x, y = s.pos
        ahead = (x + m.explore_dir[0], y + m.explore_dir[1])
        if m.explore_left > 0 and step.walkable(ahead):
            m.explore_left -= 1
            return MOVES[m.explore_dir]

        def unknown(d: tuple[int, int]) -> int:
            count = 0
            for k in range(1, 9):
                cx, cy = x + d[0] * k, y + d[1] * k
                for j in range(-3, 4):
                    cell = (cx + d[1] * j, cy + d[0] * j)
                    if cell not in m.materials:
                        count += 1
                    else:
                        count -= min(3, m.visits.get(cell, 0))
            return count

        options = [d for d in ORDER if step.walkable((x + d[0], y + d[1]))]
        if not options:
            return "noop"
        reverse = (-m.explore_dir[0], -m.explore_dir[1])
        ranked = sorted(
            options, key=lambda d: (-(unknown(d) - (40 if d == reverse else 0)), ORDER.index(d))
        )
        m.explore_dir = ranked[0]
        m.explore_left = EXPLORE_LEG
        return MOVES[m.explore_dir]


class OfflinePolicy:
    """The ``offline`` backend: the candidate's instructions, read as a playbook."""

    def __init__(self, instructions: str) -> None:
        self.playbook = Playbook.parse(instructions)
        self.agent = Agent(self.playbook)

    async def act(self, state: State, observation: str) -> Choice:
        d = self.agent.decide(state)
        if d.rule is None:
            return Choice(d.action, "no rule applied (waited)")
        return Choice(d.action, f"rule {d.rule.number}: {d.rule.text}", d.rule.number)
