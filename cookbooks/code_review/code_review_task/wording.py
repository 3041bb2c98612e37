"""Checklist wording: items, their words, and cues (what an item must say to mean
something).

A checklist is free text. Its *items* are the bulleted lines (``-``, ``*``, ``•`` or
``1.``/``1)``); other lines are prose that the offline reviewer does not act on. An item
may start with a category (``- sql-injection: ...``), which scopes it to that category.

A *cue* is written ``"sql|query + format*|f-string"``: terms joined by ``+`` must all
occur in the item; ``|`` separates alternatives; an alternative of several words is a
phrase (contiguous words); a word ending in ``*`` matches any word it starts. Words are
lowercased, with hyphens and underscores as spaces, and a plural ``s``/``es`` is
ignored, so ``f-string`` matches "f-strings" and ``query`` matches "queries".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import CATEGORIES

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(?P<body>.*\S)\s*$")
_SCOPE = re.compile(r"^\[?(?P<cat>[a-z][a-z-]+)\]?\s*:\s*(?P<rest>.*)$")
_WORD = re.compile(r"[a-z0-9]+")
_CUE_WORD = re.compile(r"[a-z0-9]+\*?")


@dataclass(frozen=True)
class Item:
    number: int  # 1-based, in order of the bulleted lines
    text: str  # the line without its bullet
    category: str | None  # the scope, when the item starts with a known category
    words: tuple[str, ...]  # the wording's words (after the scope)


def _fold(text: str) -> str:
    return text.lower().replace("-", " ").replace("_", " ").replace("'", "")


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(_fold(text)))


def items(checklist: str) -> list[Item]:
    found: list[Item] = []
    for raw in checklist.splitlines():
        m = _BULLET.match(raw)
        if not m:
            continue
        body = m.group("body")
        category, wording = None, body
        scoped = _SCOPE.match(body)
        if scoped and scoped.group("cat") in CATEGORIES:
            # the scope names the category; only the rest says what to look for
            category, wording = scoped.group("cat"), scoped.group("rest")
        found.append(Item(len(found) + 1, body, category, words(wording)))
    return found


def _word_matches(token: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return token.startswith(pattern[:-1])
    return token in (pattern, pattern + "s", pattern + "es") or (
        pattern.endswith("y") and token == pattern[:-1] + "ies"
    )


@dataclass(frozen=True)
class Cue:
    """All terms must occur; each term is a tuple of alternative phrases."""

    spec: str
    terms: tuple[tuple[tuple[str, ...], ...], ...]

    @classmethod
    def parse(cls, spec: str) -> Cue:
        terms = []
        for term in spec.split("+"):
            alternatives = tuple(tuple(_CUE_WORD.findall(_fold(alt))) for alt in term.split("|"))
            if not alternatives or any(not alt for alt in alternatives):
                raise ValueError(f"cue {spec!r}: empty term")
            terms.append(alternatives)
        return cls(spec, tuple(terms))

    def matches(self, tokens: Sequence[str]) -> bool:
        return all(any(_has_phrase(tokens, alt) for alt in term) for term in self.terms)


def _has_phrase(tokens: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    for i in range(len(tokens) - n + 1):
        if all(_word_matches(tokens[i + j], phrase[j]) for j in range(n)):
            return True
    return False
