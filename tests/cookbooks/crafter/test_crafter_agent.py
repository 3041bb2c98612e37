"""The offline policy follows the playbook: change a rule and the behaviour changes."""

from __future__ import annotations

import asyncio
from collections import Counter

from crafter_support import Trace
from crafter_task.agent import Agent, OfflinePolicy
from crafter_task.episode import Episode, play_episode
from crafter_task.game import Game
from crafter_task.playbook import Playbook

WORLD = 10_003


def play(text: str, steps: int = 100) -> tuple[Episode, Trace]:
    trace = Trace()
    episode = asyncio.run(play_episode(WORLD, steps, OfflinePolicy(text), trace))
    return episode, trace


def actions(trace: Trace) -> list[str]:
    return [str(s["action"]) for s in trace.steps]


def test_no_rules_means_waiting() -> None:
    episode, trace = play("Just prose: play well.")
    assert set(actions(trace)) == {"noop"}
    assert all(s["info"]["note"] == "no rule applied (waited)" for s in trace.steps)  # type: ignore[index]
    assert episode.unlocked_at == {}


def test_a_plain_action_rule_is_played_as_written() -> None:
    _, trace = play("- move right", steps=10)
    assert actions(trace) == ["move_right"] * 10


def test_adding_a_rule_changes_behaviour() -> None:
    explore, t_explore = play("- explore")
    wood, t_wood = play("- collect wood\n- explore")
    assert actions(t_explore) != actions(t_wood)
    assert "collect_wood" not in explore.unlocked_at
    assert "collect_wood" in wood.unlocked_at
    assert Counter(actions(t_wood))["do"] >= 9
    table, _ = play("- when wood >= 2: place table\n- collect wood\n- explore")
    assert "place_table" in table.unlocked_at and "place_table" not in wood.unlocked_at


def test_rule_order_decides() -> None:
    first, _ = play("- place table\n- collect wood\n- explore")
    last, t_last = play("- collect wood\n- place table\n- explore")
    # 'collect wood' above 'place table' gathers all nine wood before placing a table
    assert first.unlocked_at["place_table"] < last.unlocked_at["place_table"]
    notes = [s["info"]["note"] for s in t_last.steps]  # type: ignore[index]
    assert notes.index("rule 2: place table") > notes.index("rule 1: collect wood")


def test_conditions_gate_rules() -> None:
    capped, _ = play("- when wood < 3: collect wood\n- explore")
    assert capped.final["wood"] == 3
    _, trace = play("- when step >= 5: move left\n- move right", steps=8)
    assert actions(trace) == ["move_right"] * 5 + ["move_left"] * 3


def test_deciding_rule_held_at_every_step() -> None:
    text = "- when drink < 9: drink water\n- when wood < 2: collect wood\n- explore"
    book = Playbook.parse(text)
    agent = Agent(book)
    game = Game(WORLD)
    fired = Counter()
    for _ in range(80):
        state = game.state()
        decision = agent.decide(state)
        if decision.rule is not None:
            assert decision.rule.applies(state)
            # every rule above it either did not apply or could not act
            for above in book.rules[: decision.rule.number - 1]:
                assert (
                    not above.applies(state)
                    or agent.plan(above.directive, _step(state, agent)) is None
                )
            fired[decision.rule.number] += 1
        game.step(decision.action)
    assert fired[1] and fired[2] and fired[3]


def _step(state, agent):  # type: ignore[no-untyped-def]
    from crafter_task.agent import Step

    return Step(state, agent.memory)
