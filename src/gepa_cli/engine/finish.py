"""The end of a run: heldout scores for the seed and the best, then the outcome record,
emitted as run.finished and returned. A run the proposer gives up on still emits
run.finished (with the error), so its feed says how it ended."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gepa_cli.engine import events as ev
from gepa_cli.engine.budget import Work
from gepa_cli.engine.outcome import RunOutcome
from gepa_cli.engine.result import EngineResult
from gepa_cli.engine.state import Candidate

if TYPE_CHECKING:
    from gepa_cli.engine.loop import GepaEngine


def heldout_targets(engine: GepaEngine) -> list[tuple[Candidate, list[str]]]:
    """The candidates the end of the run scores on heldout, each with its roles: the
    seed and the best, then (``heldout_candidates = "frontier"``) the frontier's other
    members, strongest validation mean first."""
    state, settings = engine.state, engine.settings
    seed, best = state.candidates[0], state.best()
    targets = [(seed, ["seed", "best"])] if best is seed else [(seed, ["seed"]), (best, ["best"])]
    if settings.heldout_candidates == "frontier":
        frontier, _ = state.frontier_index(settings.frontier_type).frontier()
        members = {cid for ids in frontier.values() for cid in ids} - {seed.id, best.id}
        ranked = sorted(members, key=lambda cid: (-state.by_id(cid).val_mean, cid))
        for cid in ranked[: settings.max_heldout_candidates]:
            targets.append((state.by_id(cid), ["frontier"]))
    return targets


async def heldout(engine: GepaEngine, stopped_by: str) -> None:
    state = engine.state
    for candidate, roles in heldout_targets(engine):
        if engine.stopped_externally:
            # a stop request means "spend nothing more"; resume continues the run
            engine.emitter.emit(
                ev.HELDOUT_SKIPPED,
                {"candidate_id": candidate.id, "roles": roles, "reason": stopped_by},
            )
            continue
        missing = engine.evals.missing(candidate.content_hash, state.heldout_ids)
        limit = engine.guard.blocked_by(
            Work(heldout_rollouts=len(missing)), engine.control.elapsed_seconds()
        )
        if limit is not None:
            engine.emitter.emit(
                ev.HELDOUT_SKIPPED,
                {"candidate_id": candidate.id, "roles": roles, "reason": limit},
            )
            continue
        got = await engine.evals.evaluate(
            candidate.id,
            candidate.content_hash,
            candidate.texts,
            state.heldout_ids,
            role="heldout",
            purpose="heldout",
            iteration=state.counters.iteration,
        )
        mean = sum(x.score for x in got.values()) / len(got)
        state.heldout_means[candidate.id] = mean
        engine.emitter.emit(
            ev.HELDOUT_COMPLETED,
            {"candidate_id": candidate.id, "roles": roles, "mean": mean, "count": len(got)},
        )


def outcome(engine: GepaEngine, stopped_by: str, *, error: str | None = None) -> RunOutcome:
    state = engine.state
    seed, best = state.candidates[0], state.best()
    return RunOutcome(
        stopped_by=stopped_by,
        best_candidate_id=best.id,
        best_texts=dict(best.texts),
        best_val_mean=best.val_mean,
        best_val_count=len(best.val_scores),
        seed_val_mean=seed.val_mean,
        seed_val_count=len(seed.val_scores),
        seed_heldout_mean=state.heldout_means.get(seed.id),
        best_heldout_mean=state.heldout_means.get(best.id),
        heldout_count=len(state.heldout_ids),
        num_candidates=len(state.candidates),
        iterations=state.counters.iteration,
        budget=state.ledger.summary(),
        error=error,
    )


def emit_finished(engine: GepaEngine, stopped_by: str, *, error: str | None = None) -> RunOutcome:
    """Fill the outcome record and emit it as ``run.finished``."""
    record = outcome(engine, stopped_by, error=error)
    engine.emitter.emit(ev.RUN_FINISHED, record.finished_event())
    return record


def finish(engine: GepaEngine, stopped_by: str) -> EngineResult:
    return EngineResult.of(emit_finished(engine, stopped_by), engine.state)
