from __future__ import annotations

import pytest
from crafter_task.playbook import (
    Clause,
    Directive,
    Playbook,
    PlaybookError,
    normalize,
    parse_clause,
    parse_directive,
)


def test_normalize_joins_known_names() -> None:
    assert normalize("  Make Wood Pickaxe. ") == "make_wood_pickaxe"
    assert normalize("when missing place table: place table") == (
        "when missing place_table: place_table"
    )
    assert normalize("see ripe plant") == "see ripe_plant"


@pytest.mark.parametrize(
    ("text", "directive"),
    [
        ("collect wood", Directive("collect", "tree")),
        ("collect_wood", Directive("collect", "tree")),
        ("Chop tree", Directive("collect", "tree")),
        ("collect sapling", Directive("collect", "grass")),
        ("drink water", Directive("collect", "water")),
        ("collect drink", Directive("collect", "water")),
        ("eat cow", Directive("eat", "cow")),
        ("eat ripe plant", Directive("eat", "plant")),
        ("place table", Directive("place", "table")),
        ("place_furnace", Directive("place", "furnace")),
        ("make stone pickaxe", Directive("make", "stone_pickaxe")),
        ("craft iron sword", Directive("make", "iron_sword")),
        ("defeat zombie", Directive("attack", "zombie")),
        ("avoid skeleton", Directive("flee", "skeleton")),
        ("wake up", Directive("sleep")),
        ("sleep", Directive("sleep")),
        ("explore", Directive("explore")),
        ("move left", Directive("action", "move_left")),
        ("do", Directive("action", "do")),
        ("noop", Directive("action", "noop")),
    ],
)
def test_directives(text: str, directive: Directive) -> None:
    assert parse_directive(normalize(text)) == directive


@pytest.mark.parametrize(
    ("text", "clause"),
    [
        ("always", Clause("always")),
        ("night", Clause("night")),
        ("not day", Clause("day", negated=True)),
        ("wood >= 2", Clause("compare", "wood", ">=", 2)),
        ("drink<4", Clause("compare", "drink", "<", 4)),
        ("step > 100", Clause("compare", "step", ">", 100)),
        ("have wood_pickaxe", Clause("compare", "wood_pickaxe", ">=", 1)),
        ("no sapling", Clause("compare", "sapling", "==", 0)),
        ("see cow", Clause("see", "cow")),
        ("no table", Clause("see", "table", negated=True)),
        ("trees nearby", Clause("see", "tree")),
        ("zombie within 3", Clause("within", "zombie", number=3)),
        ("missing eat_cow", Clause("missing", "eat_cow")),
        ("unlocked place_table", Clause("unlocked", "place_table")),
    ],
)
def test_clauses(text: str, clause: Clause) -> None:
    assert parse_clause(text) == clause


@pytest.mark.parametrize(
    "text",
    ["fly to the moon", "collect gold", "make pizza", "move north", "place cow", ""],
)
def test_bad_directives(text: str) -> None:
    with pytest.raises(PlaybookError):
        parse_directive(text)


@pytest.mark.parametrize("text", ["gold > 2", "missing flying", "zombie within x", "sunny"])
def test_bad_clauses(text: str) -> None:
    with pytest.raises(PlaybookError):
        parse_clause(text)


def test_playbook_rules_prose_and_ignored_lines() -> None:
    text = (
        "Survive and craft.\n"
        "- when drink < 4 and see water: drink water\n"
        "* Place Table.\n"
        "1. when missing eat cow, cow within 5: eat cow\n"
        "- dance wildly\n"
        "- when wood > 2 place table\n"
        "Prose with - a dash inside is not a rule.\n"
        "- explore\n"
    )
    book = Playbook.parse(text)
    assert [r.number for r in book.rules] == [1, 2, 3, 4]
    assert [r.line for r in book.rules] == [2, 3, 4, 8]
    assert [r.directive.describe() for r in book.rules] == [
        "drink water",
        "place table",
        "eat cow",
        "explore",
    ]
    assert book.rules[0].clauses == (
        Clause("compare", "drink", "<", 4),
        Clause("see", "water"),
    )
    assert book.rules[2].clauses == (
        Clause("missing", "eat_cow"),
        Clause("within", "cow", number=5),
    )
    assert [(line, why.split()[0]) for line, _, why in book.ignored] == [
        (5, "unknown"),
        (6, "a"),
    ]
    assert Playbook.parse("No rules at all, only prose.").rules == []
