"""The manifest of a session: written when the service lets go of it (shutdown).

While a service holds a session its feed and ledgers grow with every call, so a
manifest would be stale at once; it is written after the last flush, with the digests
of every file, and `workspace status` checks it like an offline run's. Its ``state``
maps the lifecycle: completed -> finished, failed -> failed, anything else -> stopped
(``stopped_by`` cancelled, or service_stopped for a session that can go on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gepa_cli.artifacts import StateHistory, write_manifest
from gepa_cli.artifacts.events import utc_now
from gepa_cli.artifacts.schema import (
    BestCandidate,
    Budget,
    CacheSettings,
    Manifest,
    SeedCandidate,
    StateChange,
    UsageTotals,
)
from gepa_cli.artifacts.session_fold import CANCELLED, COMPLETED, FAILED

if TYPE_CHECKING:
    from gepa_cli.online.session import Session

UPSTREAM_BOUNDARY = "upstream.chat"


def manifest_state(state: str | None) -> tuple[str, str]:
    if state == COMPLETED:
        return "finished", "completed"
    if state == FAILED:
        return "failed", "failed"
    if state == CANCELLED:
        return "stopped", "cancelled"
    return "stopped", "service_stopped"


def write_session_manifest(session: Session) -> Manifest:
    fold, config = session.fold, session.config
    state, default_stop = manifest_state(fold.state)
    best = fold.candidates.get(fold.incumbent_id or "")
    seed = fold.candidates.get("c0000")
    budget = fold.budget()
    history = StateHistory(
        StateChange(
            state=str(entry["state"]), at=str(entry.get("changed_at") or entry.get("at") or "")
        )
        for entry in fold.state_history
    )
    history.enter(f"service_released:{fold.state}")
    usage = {
        UPSTREAM_BOUNDARY: UsageTotals(**fold.usage.to_dict()),
        f"proposer.{config.proposer.backend}": UsageTotals(**fold.proposal_usage.to_dict()),
    }
    manifest = Manifest(
        run_id=session.session_id,
        config_path=None,
        state=state,
        stopped_by=fold.stopped_by or default_stop,
        started_at=str((fold.created or {}).get("created_at") or ""),
        finished_at=utc_now(),
        best_candidate=BestCandidate(
            id=best.id, texts=best.texts, val_mean=best.val_mean, val_count=best.val_count
        )
        if best is not None
        else None,
        seed_candidate=SeedCandidate(id=seed.id, val_mean=seed.val_mean, val_count=seed.val_count)
        if seed is not None
        else None,
        budget=Budget(**budget),
        usage=usage,
        cost_usd=float(budget["cost_usd"]),
        cost_known=bool(budget["cost_known"]),
        spent_usd=float(budget["cost_usd"]),
        num_candidates=len(fold.candidates),
        cache=CacheSettings(
            mode=config.cache.mode, namespace=config.cache.namespace, path=str(config.cache.path)
        ),
        state_history=history.changes,
        online={**fold.summary(), "candidates": [c.to_dict() for c in fold.candidates.values()]},
    )
    return write_manifest(session.root, manifest)
