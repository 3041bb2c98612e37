"""`gepa-cli show`: a candidate's texts (raw, to pipe into a file), its scores and
lineage, and the run's Pareto frontier with each member's scores."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gepa_cli.artifacts.replay import ReplayCandidate
from gepa_cli.errors import ViewError
from gepa_cli.view.run import BEST, RunView


def selected_texts(view: RunView, ref: str) -> dict[str, str]:
    """The texts of ``ref``; for ``best``, exactly as the manifest records them."""
    if ref == BEST:
        texts = view.best_texts()
        if texts is None:
            raise ViewError(
                f"run {view.run_id} ({view.path}) has no best candidate yet",
                hint="the run has not validated its seed; wait for it or check its error",
            )
        return texts
    return dict(view.candidate(ref).texts)


def texts_output(texts: dict[str, str], module: str | None = None) -> str:
    """One module's text exactly as stored, or each module under a ``==> name <==`` line."""
    if module is not None:
        if module not in texts:
            raise ViewError(
                f"the candidate has no module {module!r}",
                hint=f"use one of: {', '.join(texts)}",
            )
        return texts[module]
    if len(texts) == 1:
        return next(iter(texts.values()))
    parts = []
    for name, text in texts.items():
        parts.append(f"==> {name} <==\n{text}" + ("" if text.endswith("\n") else "\n"))
    return "\n".join(parts)


def candidate_facts(view: RunView, candidate: ReplayCandidate) -> dict[str, Any]:
    """Texts, scores and lineage of one candidate (``show --json``)."""
    heldout = view.heldout_means
    keys = view.frontier_keys().get(candidate.id, [])
    texts = dict(candidate.texts)
    if BEST in view.roles(candidate):
        texts = view.best_texts() or texts
    return {
        "run_id": view.run_id,
        "run_dir": str(view.path),
        "state": view.state,
        "candidate_id": candidate.id,
        "roles": view.roles(candidate),
        "origin": candidate.origin,
        "parents": list(candidate.parents),
        "iteration": candidate.iteration,
        "proposal_id": candidate.proposal_id,
        "content_hash": candidate.content_hash,
        "texts": texts,
        "val_mean": candidate.val_mean,
        "val_count": candidate.val_count,
        "heldout_mean": heldout.get(candidate.id),
        "objective_means": dict(candidate.objective_means),
        "val_scores": dict(candidate.val_scores),
        "on_frontier": bool(keys),
        "frontier_keys": keys,
        "lineage": [
            {
                "candidate_id": c.id,
                "origin": c.origin,
                "parents": list(c.parents),
                "proposal_id": c.proposal_id,
                "val_mean": c.val_mean,
                "heldout_mean": heldout.get(c.id),
            }
            for c in view.lineage(candidate)
        ],
    }


def frontier_facts(view: RunView) -> dict[str, Any]:
    """The frontier's members, best first, each with its scores and the keys it holds."""
    frontier = view.frontier
    heldout = view.heldout_means
    keys = view.frontier_keys()
    holders: dict[str, int] = {}
    for ids in (frontier.frontier if frontier is not None else {}).values():
        if len(ids) == 1:
            holders[ids[0]] = holders.get(ids[0], 0) + 1

    def mean(cid: str) -> float:
        candidate = view.replay.candidate(cid)
        return candidate.val_mean if candidate is not None and candidate.val_mean else 0.0

    members = []
    for cid, held in sorted(keys.items(), key=lambda item: (-mean(item[0]), item[0])):
        candidate = view.replay.candidate(cid)
        members.append(
            {
                "candidate_id": cid,
                "roles": view.roles(candidate) if candidate is not None else [],
                "origin": candidate.origin if candidate is not None else None,
                "parents": list(candidate.parents) if candidate is not None else [],
                "val_mean": candidate.val_mean if candidate is not None else None,
                "val_count": candidate.val_count if candidate is not None else None,
                "heldout_mean": heldout.get(cid),
                "objective_means": dict(candidate.objective_means) if candidate else {},
                "keys": len(held),
                "keys_alone": holders.get(cid, 0),
            }
        )
    return {
        "run_id": view.run_id,
        "run_dir": str(view.path),
        "state": view.state,
        "frontier_type": frontier.frontier_type if frontier is not None else None,
        "keys": len(frontier.frontier) if frontier is not None else 0,
        "best_candidate_id": frontier.best_candidate_id if frontier is not None else None,
        "members": members,
    }


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def frontier_table(facts: dict[str, Any]) -> Table:
    """`frontier_facts` as a table: one row per member, a column per objective."""
    table = Table(
        title=f"{facts['run_id']}: {facts['frontier_type'] or '-'} frontier, {facts['keys']} keys",
        title_justify="left",
    )
    objectives = sorted({n for m in facts["members"] for n in m["objective_means"]})
    for name in ("candidate", "roles", "val", "heldout", *objectives, "keys", "alone"):
        table.add_column(name, justify="left" if name in ("candidate", "roles") else "right")
    for m in facts["members"]:
        table.add_row(
            m["candidate_id"],
            ", ".join(m["roles"]),
            _score(m["val_mean"]),
            _score(m["heldout_mean"]),
            *(_score(m["objective_means"].get(n)) for n in objectives),
            str(m["keys"]),
            str(m["keys_alone"]),
        )
    return table
