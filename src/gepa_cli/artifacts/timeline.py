"""How a replay reads to a person: one line per meaningful event, and a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gepa_cli.artifacts.cost import usd

if TYPE_CHECKING:
    from gepa_cli.artifacts.replay import Replay


# The folder in replay.py writes each timeline line while folding its event, since some
# lines (a new best, or none when the best is unchanged) depend on what came before.


def num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)


def child_verdict(data: Mapping[str, Any]) -> str:
    pids = ", ".join(map(str, data.get("proposal_ids", [])))
    return (
        f"{pids} on {data.get('parent_id')}, minibatch sum "
        f"{num(data.get('parent_sum'))} -> {num(data.get('child_sum'))} ({data.get('rule')})"
    )


def merge_verdict(data: Mapping[str, Any]) -> str:
    sums = ", ".join(num(x) for x in data.get("parent_sums", []))
    return f"subsample sum {num(data.get('merge_sum'))} vs parents {sums}"


def format_timeline(replay: Replay) -> list[str]:
    """One line per meaningful event: ``seq  it N  text`` (budget and checkpoints left out)."""
    lines = []
    for entry in replay.timeline:
        it = f"it {entry.iteration:>3}" if entry.iteration is not None else " " * 6
        lines.append(f"{entry.seq:>6}  {it}  {entry.text}")
    return lines


def format_summary(replay: Replay) -> list[str]:
    counts = replay.event_counts
    origins = Counter(c.origin for c in replay.candidates)
    state = f"finished, stopped_by {replay.stopped_by}" if replay.finished else "no run.finished"
    lines = [
        f"run {replay.run_id}: {replay.events} events, {state}",
        f"candidates: {len(replay.candidates)} ("
        + ", ".join(f"{name} {n}" for name, n in sorted(origins.items()))
        + ")",
        "proposals: {} completed, {} failed; children: {} accepted, {} rejected, {} duplicate, "
        "{} dropped; "
        "merges: {} accepted, {} rejected".format(
            *(
                counts.get(kind, 0)
                for kind in (
                    "proposal.completed",
                    "proposal.failed",
                    "candidate.accepted",
                    "candidate.rejected",
                    "candidate.duplicate",
                    "candidate.dropped",
                    "merge.accepted",
                    "merge.rejected",
                )
            )
        ),
    ]
    best, seed = replay.best_candidate, replay.candidate("c0000")
    if best is not None:
        seed_mean = f" (seed {num(seed.val_mean)})" if seed is not None else ""
        lines.append(
            f"best: {best.id} val_mean {num(best.val_mean)} on {best.val_count}{seed_mean}"
        )
    for row in replay.heldout:
        roles = "+".join(map(str, row.get("roles", [])))
        if row["outcome"] == "completed":
            lines.append(f"heldout {roles}: {row.get('candidate_id')} mean {num(row.get('mean'))}")
        else:
            lines.append(f"heldout {roles}: skipped ({row.get('reason')})")
    budget = replay.budget or {}
    rollouts = budget.get("rollouts") or {}
    if budget:
        by_role = ", ".join(f"{k} {v}" for k, v in rollouts.items() if k != "total")
        cost = budget.get("cost_usd")
        lines.append(
            f"budget: rollouts {rollouts.get('total')} ({by_role}), proposals "
            f"{budget.get('proposals')}, tokens {budget.get('tokens')}, cost "
            + usd(
                float(cost) if isinstance(cost, (int, float)) else None,
                bool(budget.get("cost_known", True)),
            )
        )
    if replay.frontier is not None:
        members = sorted({c for ids in replay.frontier.frontier.values() for c in ids})
        lines.append(
            f"frontier ({replay.frontier.frontier_type}): {len(replay.frontier.frontier)} keys, "
            f"candidates {' '.join(members)}"
        )
    if replay.session is not None:
        session = replay.session
        lines.append(
            f"session: {session.state}"
            + (f" (stopped_by {session.stopped_by})" if session.stopped_by else "")
            + f", best {session.incumbent_id}, served {session.served}, rewards "
            f"{session.rewards}, challengers {', '.join(session.challengers) or '-'}"
        )
    if replay.partial_last_line is not None:
        lines.append(
            f"note: line {replay.partial_last_line} is half-written (a running or crashed run); "
            "it was left out"
        )
    return lines
