"""The Pareto frontier: for each key (a validation example, an objective, or both),
the candidates that reach the best score there.

The frontier is derived from the candidates' validation scores, never stored apart
from them, so it cannot drift from the scores it summarizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gepa_cli.engine.state import Candidate
from gepa_cli.errors import ConfigError

Frontier = dict[str, list[str]]  # key -> candidate ids at the best score (sorted)


def frontier_entries(candidate: Candidate, frontier_type: str) -> dict[str, float]:
    """The scores a candidate competes with, by frontier key."""
    entries: dict[str, float] = {}
    if frontier_type in ("instance", "hybrid"):
        prefix = "example:" if frontier_type == "hybrid" else ""
        for eid, score in candidate.val_scores.items():
            entries[prefix + eid] = score
    if frontier_type in ("objective", "hybrid"):
        for name, score in candidate.val_objectives.items():
            entries["objective:" + name] = score
    return entries


def compute_frontier(
    candidates: Sequence[Candidate], frontier_type: str
) -> tuple[Frontier, dict[str, float]]:
    """The frontier and the best score for each of its keys."""
    best: dict[str, float] = {}
    members: dict[str, list[str]] = {}
    for candidate in candidates:
        for key, score in frontier_entries(candidate, frontier_type).items():
            if key not in best or score > best[key]:
                best[key] = score
                members[key] = [candidate.id]
            elif score == best[key]:
                members[key].append(candidate.id)
    if frontier_type == "objective" and not members:
        raise ConfigError(
            "frontier_type 'objective' needs rollouts that return objectives, "
            "but the validation rollouts returned none",
            hint="use frontier_type = 'instance' (or 'hybrid')",
        )
    keys = sorted(members)
    return {k: sorted(members[k]) for k in keys}, {k: best[k] for k in keys}


def remove_dominated(frontier: Mapping[str, Sequence[str]], means: Mapping[str, float]) -> Frontier:
    """Drop candidates whose every front also holds another surviving candidate.

    Weakest first (by mean, then id), one at a time, so two candidates that share all
    their fronts never remove each other: the stronger one stays.
    """
    fronts = {key: set(ids) for key, ids in frontier.items()}
    order = sorted({cid for ids in fronts.values() for cid in ids}, key=lambda c: (means[c], c))
    alive = set(order)
    changed = True
    while changed:
        changed = False
        for cid in order:
            if cid not in alive:
                continue
            mine = [front for front in fronts.values() if cid in front]
            if all(any(o != cid and o in alive for o in front) for front in mine):
                alive.discard(cid)
                changed = True
                break
    return {key: sorted(c for c in ids if c in alive) for key, ids in fronts.items()}


def front_counts(frontier: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """How many fronts each candidate is on, in id order."""
    counts: dict[str, int] = {}
    for ids in frontier.values():
        for cid in ids:
            counts[cid] = counts.get(cid, 0) + 1
    return dict(sorted(counts.items()))
