"""The playbook grammar: the candidate's instructions as an ordered list of rules.

A line that starts with ``-`` (or ``*``, or ``1.``) is a rule; every other line is
prose, which the offline policy ignores and an LLM agent reads. Case, underscores and
a final period do not matter (``Place Table``, ``place_table``, ``place table.``).

    rule      := "-" [ "when" condition ":" ] directive
    condition := clause { ("and" | ",") clause }
    clause    := ["not"] atom
    atom      := "always" | "day" | "night" | "asleep"
               | NAME OP NUMBER        NAME: health, food, drink, energy, an item
                                       (wood, stone, sapling, wood_pickaxe, ...) or step;
                                       OP: < <= > >= = == !=
               | "have" ITEM | "no" ITEM        ITEM >= 1, ITEM == 0
               | "see" THING | "no" THING | THING "in view" | THING "nearby"
               | THING "within" NUMBER          nearest THING at most N steps away
               | "missing" ACHIEVEMENT | "unlocked" ACHIEVEMENT   (this episode)
    THING     := a material (tree, water, stone, coal, iron, diamond, lava, table,
                 furnace, sand, grass, path) or a creature (cow, zombie, skeleton,
                 arrow, plant, ripe plant)
    directive := "collect" RESOURCE     wood, stone, coal, iron, diamond, sapling, drink
               | "drink water" | "eat cow" | "eat plant"
               | "place" (table | furnace | stone | plant)
               | "make" TOOL            wood/stone/iron pickaxe or sword
               | ("attack" | "defeat") (zombie | skeleton | cow)
               | ("flee" | "avoid") (zombie | skeleton)
               | "sleep" | "wake up" | "explore"
               | "noop" | "do" | "move" (left | right | up | down)

Each step the rules are read top to bottom; the first rule whose condition holds *and*
whose directive can act now decides the action. A directive that cannot act (nothing
to collect in sight, a missing tool or material, a tool already held, no table near to
craft at) lets the next rule decide. When no rule decides, the agent waits (``noop``).
The achievement names work as directives too: ``- collect_stone``, ``- place_table``,
``- make_wood_pickaxe``, ``- eat_cow``, ``- defeat_zombie``, ``- wake_up``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .facts import ACHIEVEMENTS, ACTIONS, ITEMS, MAKE, MATERIALS, MAX_ITEM, PLACE

if TYPE_CHECKING:
    from .game import State

CREATURE_NAMES = ("cow", "zombie", "skeleton", "arrow", "plant", "ripe_plant")
THINGS = frozenset(MATERIALS) | frozenset(CREATURE_NAMES)
RESOURCES = {  # directive word -> the material collected
    "wood": "tree",
    "tree": "tree",
    "stone": "stone",
    "coal": "coal",
    "iron": "iron",
    "diamond": "diamond",
    "sapling": "grass",
    "drink": "water",
    "water": "water",
}
PLACEABLE = tuple(PLACE)
TOOLS = tuple(MAKE)
DIRECTIONS = ("left", "right", "up", "down")
OPS: dict[str, Callable[[int, int], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
}
_COMPOUNDS = sorted(
    {n for n in (*ITEMS, *ACHIEVEMENTS, *ACTIONS, "ripe_plant") if "_" in n},
    key=len,
    reverse=True,
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(?P<body>.*\S)\s*$")
_COMPARE = re.compile(r"^(?P<name>[a-z_]+)\s*(?P<op><=|>=|==|!=|<|>|=)\s*(?P<num>-?\d+)$")


class PlaybookError(ValueError):
    """A rule line that does not parse (the message says why)."""


def normalize(text: str) -> str:
    """Lowercase, single spaces, and multi-word names joined: 'wood pickaxe' -> 'wood_pickaxe'."""
    text = " ".join(text.lower().replace("-", " ").split())
    text = text.rstrip(".;!").strip()
    for name in _COMPOUNDS:
        spaced = name.replace("_", " ")
        if spaced in text:
            text = re.sub(rf"\b{re.escape(spaced)}\b", name, text)
    return text


@dataclass(frozen=True)
class Clause:
    kind: str  # always, day, night, asleep, compare, see, within, missing, unlocked
    subject: str = ""
    op: str = ""
    number: int = 0
    negated: bool = False

    def holds(self, state: State) -> bool:
        return self._holds(state) != self.negated

    def _holds(self, s: State) -> bool:
        if self.kind == "always":
            return True
        if self.kind == "night":
            return s.night
        if self.kind == "day":
            return not s.night
        if self.kind == "asleep":
            return s.sleeping
        if self.kind == "compare":
            value = s.step if self.subject == "step" else s.inventory.get(self.subject, 0)
            return OPS[self.op](value, self.number)
        if self.kind in ("see", "within"):
            found = s.visible(self.subject.replace("_", " "))
            if self.kind == "see":
                return bool(found)
            return bool(found) and s.distance(found[0].x, found[0].y) <= self.number
        if self.kind == "missing":
            return self.subject not in s.unlocked
        if self.kind == "unlocked":
            return self.subject in s.unlocked
        raise AssertionError(self.kind)


@dataclass(frozen=True)
class Directive:
    verb: str  # action, collect, eat, place, make, attack, flee, sleep, explore
    target: str = ""

    def describe(self) -> str:
        if self.verb == "action":
            return self.target
        if self.verb == "make":
            return f"make {self.target.replace('_', ' ')}"
        if self.verb == "collect":
            return "drink water" if self.target == "water" else f"collect {_ITEM_OF[self.target]}"
        return f"{self.verb} {self.target}".strip()


_ITEM_OF = {"tree": "wood", "grass": "sapling", "water": "drink"} | {
    m: m for m in ("stone", "coal", "iron", "diamond")
}


@dataclass(frozen=True)
class Rule:
    number: int  # 1-based among the rules, as the feedback names them
    line: int  # 1-based line of the text
    text: str  # the rule as written, without its bullet
    clauses: tuple[Clause, ...]
    directive: Directive

    def applies(self, state: State) -> bool:
        return all(c.holds(state) for c in self.clauses)


@dataclass
class Playbook:
    rules: list[Rule] = field(default_factory=list)
    ignored: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)

    @classmethod
    def parse(cls, text: str) -> Playbook:
        book = cls()
        for line_no, line in enumerate(text.splitlines(), start=1):
            m = _BULLET.match(line)
            if not m:
                continue
            body = m.group("body")
            try:
                clauses, directive = parse_rule(body)
            except PlaybookError as exc:
                book.ignored.append((line_no, body, str(exc)))
                continue
            book.rules.append(Rule(len(book.rules) + 1, line_no, body, clauses, directive))
        return book


def parse_rule(body: str) -> tuple[tuple[Clause, ...], Directive]:
    text = normalize(body)
    clauses: tuple[Clause, ...] = ()
    if text.startswith(("when ", "if ")):
        head, sep, tail = text.partition(":")
        if not sep:
            raise PlaybookError("a 'when' rule needs ':' before its directive")
        cond = head.split(" ", 1)[1] if " " in head else ""
        clauses = parse_condition(cond)
        text = tail.strip()
    return clauses, parse_directive(text)


def parse_condition(text: str) -> tuple[Clause, ...]:
    parts = [p.strip() for p in re.split(r"\s+and\s+|,", text) if p.strip()]
    if not parts:
        raise PlaybookError("empty condition")
    return tuple(parse_clause(p) for p in parts)


def _thing(word: str) -> str | None:
    word = word.removesuffix("s") if word.removesuffix("s") in THINGS else word
    return word if word in THINGS else None


def parse_clause(text: str) -> Clause:
    negated = False
    if text.startswith("not "):
        negated, text = True, text[4:].strip()
    words = text.split()
    if text in ("always", "day", "night", "asleep"):
        return Clause(text, negated=negated)
    if text in ("sleeping",):
        return Clause("asleep", negated=negated)
    m = _COMPARE.match(text)
    if m:
        name = m.group("name")
        if name != "step" and name not in MAX_ITEM:
            raise PlaybookError(f"unknown stat or item {name!r}")
        return Clause("compare", name, m.group("op"), int(m.group("num")), negated)
    if len(words) == 2 and words[0] in ("missing", "unlocked", "got"):
        if words[1] not in ACHIEVEMENTS:
            raise PlaybookError(f"unknown achievement {words[1]!r}")
        kind = "missing" if words[0] == "missing" else "unlocked"
        return Clause(kind, words[1], negated=negated)
    if len(words) == 2 and words[0] in ("have", "no") and words[1] in MAX_ITEM:
        op = ">=" if words[0] == "have" else "=="
        return Clause("compare", words[1], op, 1 if op == ">=" else 0, negated)
    if len(words) == 2 and words[0] in ("see", "no") and _thing(words[1]):
        return Clause("see", str(_thing(words[1])), negated=negated != (words[0] == "no"))
    if len(words) >= 2 and _thing(words[0]) and " ".join(words[1:]) in ("in view", "nearby"):
        return Clause("see", str(_thing(words[0])), negated=negated)
    if len(words) == 3 and _thing(words[0]) and words[1] == "within" and words[2].isdigit():
        return Clause("within", str(_thing(words[0])), number=int(words[2]), negated=negated)
    raise PlaybookError(f"unknown condition {text!r}")


def parse_directive(text: str) -> Directive:
    words = text.split()
    if not words:
        raise PlaybookError("no directive after the condition")
    if text in ("noop", "wait", "do", "interact"):
        return Directive("action", "do" if text in ("do", "interact") else "noop")
    if len(words) == 2 and words[0] == "move" and words[1] in DIRECTIONS:
        return Directive("action", f"move_{words[1]}")
    if text.startswith("move_") and text[5:] in DIRECTIONS:
        return Directive("action", text)
    if text in ("sleep", "wake_up", "rest"):
        return Directive("sleep")
    if text in ("explore", "wander", "search"):
        return Directive("explore")
    if text in ("drink water", "drink", "collect_drink"):
        return Directive("collect", "water")
    if text in ("eat_cow", "eat_plant"):
        return Directive("eat", text[4:])
    verb, _, rest = text.partition("_") if len(words) == 1 else (words[0], "", " ".join(words[1:]))
    rest = rest.strip()
    if verb in ("collect", "gather", "get", "mine", "chop") and rest in RESOURCES:
        return Directive("collect", RESOURCES[rest])
    if verb == "eat" and rest in ("cow", "plant", "ripe_plant"):
        return Directive("eat", "plant" if rest == "ripe_plant" else rest)
    if verb == "place" and rest in PLACEABLE:
        return Directive("place", rest)
    if verb in ("make", "craft") and rest in TOOLS:
        return Directive("make", rest)
    if verb in ("attack", "defeat", "fight", "kill", "hunt") and rest in (
        "zombie",
        "skeleton",
        "cow",
    ):
        return Directive("attack", rest)
    if verb in ("flee", "avoid", "escape") and rest in ("zombie", "skeleton"):
        return Directive("flee", rest)
    raise PlaybookError(f"unknown directive {text!r}")


def render_rules(rules: Sequence[str], prose: Sequence[str] = ()) -> str:
    """A playbook text from prose lines and rule bodies, one ``- `` bullet a rule."""
    lines = [*prose, *(f"- {r}" for r in rules)]
    return "\n".join(lines) + "\n"
