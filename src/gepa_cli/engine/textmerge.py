"""Three-way merge of texts: an edit (base -> ours) replayed on another version of the
same text (theirs), for rebasing a stale child (rebase.py).

Line by line first (merge3, the three-way merge of the Bazaar/Breezy version control
system); where both versions changed the same lines in place, word by word within each
line. Words both versions added at the same place are both kept (a proposer that
appends cue words to one line is the common case); words both only deleted are
deleted; any other overlap is a conflict, and the merge gives up (None) rather than
guess.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping

from merge3 import Merge3

# words, and the spaces and separators between them, all kept, so a merged line keeps its layout
WORDS = re.compile(r"(\s+|[,;])")
SEPARATORS = (",", ";")


def merge_lines(base: str, ours: str, theirs: str) -> str | None:
    """``theirs`` with the edit base -> ours applied, or None when the two edits
    cannot both hold. Lines changed on both sides are merged word by word."""
    if theirs == base or ours == theirs:
        return ours
    if ours == base:
        return theirs
    # a proposer that drops the final newline has not edited the last line
    ending = theirs[len(theirs.rstrip("\n")) :]
    base, ours, theirs = base.rstrip("\n"), ours.rstrip("\n"), theirs.rstrip("\n")
    merged = _merge3(base.split("\n"), ours.split("\n"), theirs.split("\n"), _merge_changed_lines)
    return None if merged is None else "\n".join(merged) + ending


def _merge3(
    base: list[str],
    ours: list[str],
    theirs: list[str],
    resolve: Callable[[list[str], list[str], list[str]], list[str] | None],
) -> list[str] | None:
    merged: list[str] = []
    for group in Merge3(base, ours, theirs).merge_groups():
        if group[0] != "conflict":
            merged.extend(group[1])
            continue
        _, b, o, t = group
        resolved = resolve(list(b), list(o), list(t))
        if resolved is None:
            return None
        merged.extend(resolved)
    return merged


def _merge_changed_lines(base: list[str], ours: list[str], theirs: list[str]) -> list[str] | None:
    """Lines both sides edited in place (the same number of lines): merged one by one."""
    if not len(base) == len(ours) == len(theirs):
        return None
    merged = []
    for b, o, t in zip(base, ours, theirs, strict=True):
        words = _merge3(_words(b), _words(o), _words(t), _both_inserted)
        if words is None:
            return None
        merged.append("".join(words))
    return merged


def _words(line: str) -> list[str]:
    return [token for token in WORDS.split(line) if token]


def _both_inserted(base: list[str], ours: list[str], theirs: list[str]) -> list[str] | None:
    """Words both sides added at the same place: both kept; words both sides only
    deleted from the same stretch: both deletions made. Anything else conflicts."""
    if not base:
        shared = 0
        while shared < min(len(ours), len(theirs)) and ours[shared] == theirs[shared]:
            shared += 1
        # what theirs adds beyond the shared words starts at a separator (",", ";")
        while 0 < shared < len(theirs) and theirs[shared] not in SEPARATORS:
            shared -= 1
        return ours + theirs[shared:]
    kept_ours, kept_theirs = _kept(base, ours), _kept(base, theirs)
    if kept_ours is None or kept_theirs is None:
        return None
    return [w for i, w in enumerate(base) if i in kept_ours and i in kept_theirs]


def _kept(base: list[str], edited: list[str]) -> set[int] | None:
    """Positions of ``base`` that ``edited`` kept, when it only deleted words."""
    matcher = difflib.SequenceMatcher(a=base, b=edited, autojunk=False)
    kept = {i + k for i, _, size in matcher.get_matching_blocks() for k in range(size)}
    return kept if len(kept) == len(edited) else None


def merge_texts(
    base: Mapping[str, str], ours: Mapping[str, str], theirs: Mapping[str, str]
) -> dict[str, str] | None:
    texts = dict(theirs)
    for module, text in ours.items():
        if text == base[module]:
            continue
        merged = merge_lines(base[module], text, theirs[module])
        if merged is None:
            return None
        texts[module] = merged
    return texts
