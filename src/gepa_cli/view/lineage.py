"""Where each candidate sits in the lineage tree: its generation and its row.

A candidate hangs under its first parent (a merge's second parent is an extra edge);
leaves take rows in the order they were registered along a depth-first walk, and an
inner node sits halfway between its first and last child, so branches never cross.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gepa_cli.artifacts.replay import ReplayCandidate


@dataclass(frozen=True)
class Node:
    candidate_id: str
    generation: int  # edges from the seed along the longest path
    row: float


@dataclass(frozen=True)
class Edge:
    parent_id: str
    child_id: str
    kind: str  # reflection | merge


def tree_layout(candidates: Sequence[ReplayCandidate]) -> tuple[dict[str, Node], list[Edge]]:
    known = {c.id for c in candidates}
    children: dict[str | None, list[str]] = {}
    generation: dict[str, int] = {}
    edges: list[Edge] = []
    for c in candidates:  # registration order: parents come before their children
        parents = [p for p in c.parents if p in known]
        generation[c.id] = 1 + max((generation[p] for p in parents), default=-1)
        children.setdefault(parents[0] if parents else None, []).append(c.id)
        kind = "merge" if c.origin == "merge" else "reflection"
        edges += [Edge(p, c.id, kind) for p in parents]
    rows: dict[str, float] = {}
    next_row = 0.0
    # iterative depth-first walk: a long chain of reflections must not hit the
    # recursion limit
    stack: list[tuple[str, bool]] = [(cid, False) for cid in reversed(children.get(None, []))]
    while stack:
        cid, done = stack.pop()
        kids = children.get(cid, [])
        if done or not kids:
            if kids:
                rows[cid] = (rows[kids[0]] + rows[kids[-1]]) / 2
            else:
                rows[cid], next_row = next_row, next_row + 1
            continue
        stack.append((cid, True))
        stack.extend((kid, False) for kid in reversed(kids))
    nodes = {cid: Node(cid, generation[cid], rows[cid]) for cid in generation}
    return nodes, edges
