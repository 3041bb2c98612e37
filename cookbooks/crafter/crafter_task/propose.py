"""The offline proposer: a deterministic stand-in for an LLM that rewrites the playbook.

Run as ``python -m crafter_task.propose`` with the JSON reflection request on stdin
(``[proposer] backend = "command"``, ``input = "json"``). It reads only the episodes of
the reflective dataset it is given: each one's ``output`` (the episode summary:
achievements with their steps, missed ones, death and its cause, damage, the stall and
what decided the steps after it, the final inventory) and its feedback. From those it

1. guards against what hurt: a death (or damage) by a zombie, a skeleton, thirst, hunger
   or exhaustion, and vitals left near zero, get a rule at the top of the playbook;
2. aims at missed achievements: an achievement missed in the episodes whose
   prerequisites *were* reached in at least one of them (the next step of Crafter's
   tech tree: a table after wood, a pickaxe after a table, ...) gets a rule, at most
   ``MAX_NEW_RULES`` per proposal: the one most often missed in an episode that reached
   all its prerequisites, and one of the next three, chosen by the minibatch's example
   ids (so different minibatches try different combinations);
3. unblocks stalls: a gathering rule that ate the steps after progress stopped gets a
   cap (``when wood < 5: collect wood``), and the rules of a more urgent kind it kept
   from firing are moved above it; a playbook that left the agent waiting gets
   ``- explore`` at the end.

New rules go in by kind (survival, crafting, one-off goals, gathering, exploring), so a
crafting rule never sits under a gathering rule that would starve it. Rules that do not
parse are dropped. It prints the whole new playbook in one fenced block; with nothing to
change it prints the text unchanged (an unchanged proposal for the optimizer).
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .facts import ACHIEVEMENTS
from .playbook import _BULLET, Directive, PlaybookError, normalize, parse_rule

MAX_NEW_RULES = 2
SECOND_PICKS = 3  # the second new rule is one of the next three candidates
# achievement -> (achievements that make it reachable, the rule that aims at it)
TECH: dict[str, tuple[tuple[str, ...], str]] = {
    "collect_wood": ((), "when wood < 5: collect wood"),
    "place_table": (("collect_wood",), "place table"),
    "make_wood_pickaxe": (("place_table",), "make wood pickaxe"),
    "make_wood_sword": (("place_table",), "make wood sword"),
    "collect_stone": (("make_wood_pickaxe",), "when stone < 5: collect stone"),
    "place_stone": (("collect_stone",), "when missing place_stone: place stone"),
    "make_stone_pickaxe": (("collect_stone",), "make stone pickaxe"),
    "make_stone_sword": (("collect_stone",), "make stone sword"),
    "place_furnace": (("collect_stone",), "when missing place_furnace: place furnace"),
    "collect_coal": (("make_wood_pickaxe",), "when coal < 2: collect coal"),
    "collect_iron": (("make_stone_pickaxe",), "when iron < 2: collect iron"),
    "make_iron_pickaxe": (("collect_iron", "collect_coal", "place_furnace"), "make iron pickaxe"),
    "make_iron_sword": (("collect_iron", "collect_coal", "place_furnace"), "make iron sword"),
    "collect_diamond": (("make_iron_pickaxe",), "collect diamond"),
    "collect_drink": ((), "when missing collect_drink: drink water"),
    "collect_sapling": ((), "when missing collect_sapling: collect sapling"),
    "place_plant": (("collect_sapling",), "place plant"),
    "eat_plant": (("place_plant",), "eat plant"),
    "eat_cow": ((), "when missing eat_cow: eat cow"),
    "defeat_zombie": ((), "when zombie within 2: attack zombie"),
    "defeat_skeleton": (("collect_stone",), "when skeleton within 3: attack skeleton"),
    "wake_up": ((), "when energy < 9 and missing wake_up and day: sleep"),
}
assert set(TECH) == set(ACHIEVEMENTS)
# steps an achievement needs after its prerequisites: a sapling ripens after some 300
LEAD_STEPS = {"eat_plant": 300}
# what hurt -> the guard rule that answers it
GUARDS: dict[str, str] = {
    "zombie": "when zombie within 2: attack zombie",
    "zombie, weak": "when health < 4 and zombie within 3: flee zombie",
    "skeleton arrow": "when skeleton within 4: flee skeleton",
    "thirst": "when drink < 4: drink water",
    "hunger": "when food < 4: eat cow",
    "exhaustion": "when energy < 3: sleep",
}
LOW_VITAL = {"drink": "thirst", "food": "hunger", "energy": "exhaustion"}
GATHER_CAPS = {"tree": ("wood", 5), "stone": ("stone", 5), "coal": ("coal", 2), "iron": ("iron", 2)}
_RULE_NOTE = re.compile(r"^rule (?P<n>\d+): ")


def kind(body: str) -> int:
    """How urgent a rule is: 0 fleeing, 1 fighting and vitals, 2 crafting, 3 one-off
    goals, 4 gathering, 5 plain moves, 6 exploring, 7 unparsable."""
    try:
        clauses, d = parse_rule(body)
    except PlaybookError:
        return 7
    vital = any(
        c.kind == "compare"
        and c.subject in ("health", "food", "drink", "energy")
        and c.op in ("<", "<=")
        and c.number <= 4
        for c in clauses
    )
    creature_near = any(c.kind == "within" for c in clauses)
    if d.verb == "flee":
        return 0
    if d.verb == "attack" and (creature_near or d.target != "cow"):
        return 1
    if (
        vital
        and d.verb in ("collect", "eat", "sleep")
        and d.target in ("water", "cow", "plant", "")
    ):
        return 1
    if d.verb in ("place", "make"):
        return 2
    if d.verb in ("eat", "sleep", "attack") or (
        d.verb == "collect" and d.target in ("water", "grass")
    ):
        return 3
    if d.verb == "collect":
        return 4
    if d.verb == "action":
        return 5
    return 6


def same_directive(a: str, b: str) -> bool:
    try:
        return parse_rule(a)[1] == parse_rule(b)[1]
    except PlaybookError:
        return False


def _directive(body: str) -> Directive | None:
    try:
        return parse_rule(body)[1]
    except PlaybookError:
        return None


@dataclass
class Evidence:
    """What the episodes of the reflective dataset say, added up."""

    episodes: int
    gained: Counter[str]
    missed: Counter[str]
    hurt: Counter[str]  # death causes count double: they ended an episode
    low: Counter[str]
    stall_rules: Counter[int]  # rule number -> steps it decided after a stall
    stall_waits: int
    # missed in an episode that reached all of its prerequisites: the next step there
    ready_missed: Counter[str]
    reachable: set[str]
    digest: int = 0  # of the episodes' example ids: which minibatch this is

    @classmethod
    def collect(cls, records: Sequence[Mapping[str, Any]]) -> Evidence:
        ev = cls(0, Counter(), Counter(), Counter(), Counter(), Counter(), 0, Counter(), set())
        for record in records:
            summary = record.get("output")
            if not isinstance(summary, Mapping):
                summary = _summary_from_feedback(str(record.get("feedback") or ""))
            if summary is None:
                continue
            ev.episodes += 1
            ev.digest = zlib.crc32(f"{ev.digest}:{record.get('example_id', '')}".encode())
            got = summary.get("achievements") or {}
            ev.gained.update(a for a in got if a in TECH)
            ev.missed.update(a for a in ACHIEVEMENTS if a not in got)
            horizon = int(summary.get("max_steps") or 0)
            for a, (needs, _rule) in TECH.items():
                lead = LEAD_STEPS.get(a, 0)
                if a not in got and all(
                    p in got and (not lead or int(got[p]) + lead <= horizon) for p in needs
                ):
                    ev.ready_missed[a] += 1
                    ev.reachable.add(a)
            if summary.get("died") and summary.get("cause"):
                for cause in str(summary["cause"]).split(" and "):
                    ev.hurt[cause] += 2
            for hit in summary.get("damage") or []:
                if isinstance(hit, Mapping):
                    for cause in str(hit.get("cause", "")).split(" and "):
                        ev.hurt[cause] += 1
            final = summary.get("final") or {}
            for vital, cause in LOW_VITAL.items():
                if isinstance(final, Mapping) and int(final.get(vital, 9)) <= 2:
                    ev.low[cause] += 1
            for entry in summary.get("after_stall") or []:
                what, steps = str(entry.get("what", "")), int(entry.get("steps", 0))
                m = _RULE_NOTE.match(what)
                if m:
                    ev.stall_rules[int(m.group("n"))] += steps
                elif what.startswith("no rule applied"):
                    ev.stall_waits += steps
        return ev

    def reached(self, achievement: str) -> bool:
        return self.gained[achievement] > 0


def _summary_from_feedback(feedback: str) -> dict[str, Any] | None:
    """The gist of an episode from its feedback text alone (when output is missing)."""
    if not feedback.startswith("Score "):
        return None
    got = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+) \(step (\d+)\)", feedback)}
    died = re.search(r"Ending: died at step \d+ of \d+, ([^(]+) \(", feedback)
    return {
        "achievements": {a: s for a, s in got.items() if a in TECH},
        "died": bool(died),
        "cause": died.group(1).strip() if died else None,
    }


class Editor:
    """The playbook as prose lines and rule bodies, edited in place."""

    def __init__(self, text: str) -> None:
        self.prose: list[str] = []
        self.rules: list[str] = []
        self.dropped: list[str] = []
        for line in text.splitlines():
            m = _BULLET.match(line)
            if not m:
                self.prose.append(line)
                continue
            body = m.group("body")
            if _directive(body) is None:
                self.dropped.append(body)
            else:
                self.rules.append(body)
        while self.prose and not self.prose[-1].strip():
            self.prose.pop()

    def has(self, body: str) -> bool:
        target = normalize(body)
        return any(normalize(r) == target for r in self.rules)

    def insert(self, body: str) -> bool:
        if self.has(body):
            return False
        k = kind(body)
        at = next((i for i, r in enumerate(self.rules) if kind(r) > k), len(self.rules))
        self.rules.insert(at, body)
        return True

    def render(self) -> str:
        lines = [*self.prose]
        if lines and lines[-1].strip():
            lines.append("")
        lines.extend(f"- {r}" for r in self.rules)
        return "\n".join(lines) + "\n"


def propose_text(current_text: str, records: Sequence[Mapping[str, Any]]) -> str:
    ed = Editor(current_text)
    ev = Evidence.collect(records)
    if ev.episodes == 0:
        return ed.render() if ed.dropped else current_text
    original_rules = list(ed.rules)
    _guard(ed, ev)
    _progress(ed, ev)
    _unstall(ed, ev, original_rules)
    if not any(_directive(r) == Directive("explore") for r in ed.rules):
        ed.insert("explore")
    text = ed.render()
    return text if text.strip() != current_text.strip() else current_text


def _guard(ed: Editor, ev: Evidence) -> None:
    """One guard for the worst hazard of these episodes (deaths weigh double)."""
    threats = Counter(ev.hurt)
    for cause, n in ev.low.items():
        threats[cause] += n
    for cause, _n in sorted(threats.items(), key=lambda kv: (-kv[1], kv[0])):
        guard = GUARDS.get(cause)
        if guard is None:
            continue
        if cause == "zombie" and ed.has(guard):
            guard = GUARDS["zombie, weak"]
        if ed.insert(guard):
            return


def _progress(ed: Editor, ev: Evidence) -> None:
    """Rules for the missed achievements that the episodes made reachable: first those
    missed most often in an episode that reached all their prerequisites, then those
    whose prerequisites some episode reached."""
    order = {a: i for i, a in enumerate(TECH)}
    ready = [
        a
        for a in TECH
        if ev.missed[a] > 0
        and all(ev.reached(p) for p in TECH[a][0])
        and (a not in LEAD_STEPS or a in ev.reachable)
    ]
    ready.sort(key=lambda a: (-ev.ready_missed[a], -ev.missed[a], order[a]))
    # a rule already aims at those; the stall pass may move it up
    fresh = [a for a in ready if not any(same_directive(r, TECH[a][1]) for r in ed.rules)]
    if not fresh:
        return
    picks = [fresh[0]]
    rest = fresh[1 : 1 + SECOND_PICKS]
    if rest and MAX_NEW_RULES > 1:
        # the second rule varies with the minibatch: the same text from every minibatch
        # would stall the search on one rejected child, where a model would vary
        picks.append(rest[ev.digest % len(rest)])
    for achievement in picks:
        ed.insert(TECH[achievement][1])


def _unstall(ed: Editor, ev: Evidence, original: list[str]) -> None:
    """Cap the gathering rule that ate the stalled steps and lift what it blocked."""
    if ev.stall_waits and not ev.stall_rules:
        ed.insert("explore")
    if not ev.stall_rules:
        return
    number, _steps = max(ev.stall_rules.items(), key=lambda kv: (kv[1], -kv[0]))
    if not 1 <= number <= len(original):
        return
    body = original[number - 1]
    if body not in ed.rules:
        return
    d = _directive(body)
    if d is None or d.verb != "collect" or d.target not in GATHER_CAPS:
        return
    at = ed.rules.index(body)
    clauses, _ = parse_rule(body)
    if not clauses:
        item, cap = GATHER_CAPS[d.target]
        capped = f"when {item} < {cap}: {body}"
        if not ed.has(capped):
            ed.rules[at] = capped
            body = capped
    # rules of a more urgent kind stuck under it go above it, in their order
    below = [r for r in ed.rules[at + 1 :] if kind(r) < kind(body)]
    if below:
        rest = [r for r in ed.rules if r not in below]
        i = rest.index(body)
        ed.rules[:] = rest[:i] + below + rest[i:]


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text.rstrip()}\n{ticks}\n"


def main() -> int:
    raw = sys.stdin.read()
    try:
        request = json.loads(raw)
    except ValueError:
        print(
            'error: expected the JSON reflection request on stdin (set [proposer] input = "json")',
            file=sys.stderr,
        )
        return 2
    if not isinstance(request, dict):
        print("error: the reflection request must be a JSON object", file=sys.stderr)
        return 2
    current = request.get("current_text")
    if not isinstance(current, str):
        component, candidate = request.get("component"), request.get("candidate")
        if isinstance(candidate, dict) and isinstance(candidate.get(component), str):
            current = candidate[component]
        else:
            print("error: the request has no current_text (string)", file=sys.stderr)
            return 2
    dataset = request.get("reflective_dataset", [])
    if not isinstance(dataset, list) or not all(isinstance(r, dict) for r in dataset):
        print("error: reflective_dataset must be a list of objects", file=sys.stderr)
        return 2
    sys.stdout.write(_fence(propose_text(current, dataset)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
