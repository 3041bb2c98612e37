"""Merge: combine two frontier candidates that improved different modules of a
common ancestor into one candidate that keeps both improvements."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gepa_cli.engine.frontier import front_counts, remove_dominated
from gepa_cli.engine.state import Candidate, EngineState

PAIR_ATTEMPTS = 10


@dataclass(frozen=True)
class MergePlan:
    first: str
    second: str
    ancestor: str
    texts: dict[str, str]
    # module -> id of the candidate whose text the merge took
    sources: dict[str, str]


def merge_texts(
    ancestor: Candidate, first: Candidate, second: Candidate, modules: Sequence[str]
) -> tuple[dict[str, str], dict[str, str]] | None:
    """Per module, the text that moved away from the ancestor (the better candidate's
    when both moved). None when the pair has nothing to combine: no module where
    exactly one side changed."""
    texts = dict(first.texts)
    sources: dict[str, str] = {}
    complementary = False
    better = second if second.val_mean > first.val_mean else first
    for module in modules:
        base, a, b = ancestor.texts[module], first.texts[module], second.texts[module]
        if a == b:
            texts[module], sources[module] = a, first.id
        elif a == base:
            texts[module], sources[module] = b, second.id
            complementary = True
        elif b == base:
            texts[module], sources[module] = a, first.id
            complementary = True
        else:
            texts[module], sources[module] = better.texts[module], better.id
    return (texts, sources) if complementary else None


def plan_merge(state: EngineState, frontier_type: str, rng: random.Random) -> MergePlan | None:
    """Pick two non-dominated frontier candidates with a common ancestor, neither an
    ancestor of the other, not tried before, whose merge is new texts."""
    frontier, _ = state.frontier_index(frontier_type).frontier()
    means = {c.id: c.val_mean for c in state.candidates}
    pool = sorted(front_counts(remove_dominated(frontier, means)))
    if len(pool) < 2:
        return None
    tried = {tuple(t) for t in state.merge.tried_triplets}
    for _ in range(PAIR_ATTEMPTS):
        first_id, second_id = sorted(rng.sample(pool, 2))
        first_anc, second_anc = state.ancestors(first_id), state.ancestors(second_id)
        if first_id in second_anc or second_id in first_anc:
            continue
        common = [
            a
            for a in sorted(first_anc & second_anc)
            if (first_id, second_id, a) not in tried
            and means[a] <= means[first_id]
            and means[a] <= means[second_id]
        ]
        # the nearest (latest) ancestor explains the most about how the two diverged
        for ancestor_id in sorted(common, reverse=True):
            first, second = state.by_id(first_id), state.by_id(second_id)
            merged = merge_texts(state.by_id(ancestor_id), first, second, state.target_modules)
            if merged is None:
                continue
            return MergePlan(first_id, second_id, ancestor_id, merged[0], merged[1])
    return None


def merge_subsample(
    first: Mapping[str, float], second: Mapping[str, float], size: int, rng: random.Random
) -> list[str]:
    """Validation ids to test a merge on, drawn evenly from where the first parent
    wins, where the second wins, and where they tie."""
    common = sorted(set(first) & set(second))
    buckets = (
        [e for e in common if first[e] > second[e]],
        [e for e in common if second[e] > first[e]],
        [e for e in common if first[e] == second[e]],
    )
    per_bucket = max(1, math.ceil(size / 3))
    chosen: list[str] = []
    for bucket in buckets:
        take = min(len(bucket), per_bucket, size - len(chosen))
        if take > 0:
            chosen += rng.sample(bucket, take)
    unused = [e for e in common if e not in chosen]
    missing = min(size - len(chosen), len(unused))
    if missing > 0:
        chosen += rng.sample(unused, missing)
    return sorted(chosen)
