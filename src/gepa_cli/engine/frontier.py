"""The Pareto frontier: for each key (a validation example, an objective, or both),
the candidates that reach the best score there.

The frontier is derived from the candidates' validation scores, never stored apart
from them, so it cannot drift from the scores it summarizes. `FrontierIndex` keeps it
up to date one validated candidate at a time, so its cost per iteration does not grow
with the number of candidates.
"""

from __future__ import annotations

import bisect
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


class FrontierIndex:
    """The frontier of the validated candidates absorbed so far, in registration order."""

    def __init__(self, frontier_type: str) -> None:
        self.frontier_type = frontier_type
        self.best: dict[str, float] = {}
        self.members: dict[str, list[str]] = {}
        self.objectives: dict[str, dict[str, float]] = {}  # candidate id -> objective means
        self.absorbed = 0  # candidates taken in, a prefix of the run's candidate list

    def sync(self, candidates: Sequence[Candidate]) -> FrontierIndex:
        """Take in the candidates validated since the last call (a candidate registered
        but not yet validated waits, and so does every one after it)."""
        while self.absorbed < len(candidates) and candidates[self.absorbed].val_scores:
            self.add(candidates[self.absorbed])
            self.absorbed += 1
        return self

    def add(self, candidate: Candidate) -> None:
        self.objectives[candidate.id] = dict(candidate.val_objectives)
        for key, score in frontier_entries(candidate, self.frontier_type).items():
            best = self.best.get(key)
            if best is None or score > best:
                self.best[key] = score
                self.members[key] = [candidate.id]
            elif score == best:
                bisect.insort(self.members[key], candidate.id)

    def frontier(self) -> tuple[Frontier, dict[str, float]]:
        """The frontier and the best score for each of its keys, keys sorted. On an
        objective key, a member tied at the best score but dominated by another tied
        member (no worse on every objective, better on one) is left out, so the
        objective frontier holds only trade-offs worth choosing from."""
        if self.frontier_type == "objective" and not self.members:
            raise ConfigError(
                "frontier_type 'objective' needs rollouts that return objectives, "
                "but the validation rollouts returned none",
                hint="use frontier_type = 'instance' (or 'hybrid')",
            )
        keys = sorted(self.members)
        frontier = {
            k: self._undominated(self.members[k])
            if k.startswith("objective:")
            else list(self.members[k])
            for k in keys
        }
        return frontier, {k: self.best[k] for k in keys}

    def _undominated(self, ids: list[str]) -> list[str]:
        if len(ids) < 2:
            return list(ids)
        vectors = {cid: self.objectives[cid] for cid in ids}
        names = sorted({name for vector in vectors.values() for name in vector})

        def dominates(a: dict[str, float], b: dict[str, float]) -> bool:
            pairs = [(a.get(n, 0.0), b.get(n, 0.0)) for n in names]
            return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)

        return [
            cid
            for cid in ids
            if not any(dominates(vectors[o], vectors[cid]) for o in ids if o != cid)
        ]


def compute_frontier(
    candidates: Sequence[Candidate], frontier_type: str
) -> tuple[Frontier, dict[str, float]]:
    """The frontier of ``candidates`` from scratch (`FrontierIndex` keeps it incrementally)."""
    return FrontierIndex(frontier_type).sync(candidates).frontier()


def remove_dominated(frontier: Mapping[str, Sequence[str]], means: Mapping[str, float]) -> Frontier:
    """Drop candidates whose every front also holds another surviving candidate.

    Weakest first (by mean, then id), one at a time, so two candidates that share all
    their fronts never remove each other: the stronger one stays. One pass is enough:
    a removal only leaves fronts with fewer survivors, so a candidate kept earlier in
    the pass could not be removed later.
    """
    fronts_of: dict[str, list[str]] = {}
    alive_in: dict[str, int] = {}
    for key, ids in frontier.items():
        alive_in[key] = len(ids)
        for cid in ids:
            fronts_of.setdefault(cid, []).append(key)
    removed: set[str] = set()
    for cid in sorted(fronts_of, key=lambda c: (means[c], c)):
        fronts = fronts_of[cid]
        if all(alive_in[key] > 1 for key in fronts):
            removed.add(cid)
            for key in fronts:
                alive_in[key] -= 1
    return {key: sorted(c for c in ids if c not in removed) for key, ids in frontier.items()}


def front_counts(frontier: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """How many fronts each candidate is on, in id order."""
    counts: dict[str, int] = {}
    for ids in frontier.values():
        for cid in ids:
            counts[cid] = counts.get(cid, 0) + 1
    return dict(sorted(counts.items()))
