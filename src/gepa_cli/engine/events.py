"""Event names and the emitter that numbers them.

Events are plain JSON data, deterministic (no times, no runtime facts) and emitted in
the engine's logical order; docs/events.md documents every key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gepa_cli.engine.types import EventSink

RUN_STARTED = "run.started"
CANDIDATE_REGISTERED = "candidate.registered"
CANDIDATE_VALIDATED = "candidate.validated"
EVALUATION_COMPLETED = "evaluation.completed"
EVALUATION_DISCARDED = "evaluation.discarded"
ITERATION_STARTED = "iteration.started"
ITERATION_SKIPPED = "iteration.skipped"
PROPOSAL_COMPLETED = "proposal.completed"
PROPOSAL_FAILED = "proposal.failed"
CANDIDATE_ACCEPTED = "candidate.accepted"
CANDIDATE_REJECTED = "candidate.rejected"
CANDIDATE_DUPLICATE = "candidate.duplicate"
VALIDATION_STAGE = "validation.stage"
CANDIDATE_DROPPED = "candidate.dropped"
CHAIN_EXTENDED = "chain.extended"
PROPOSAL_REBASED = "proposal.rebased"
CHAIN_ABANDONED = "chain.abandoned"
MERGE_PROPOSED = "merge.proposed"
MERGE_ACCEPTED = "merge.accepted"
MERGE_REJECTED = "merge.rejected"
FRONTIER_UPDATED = "frontier.updated"
BUDGET_UPDATED = "budget.updated"
CHECKPOINT = "checkpoint"
HELDOUT_COMPLETED = "heldout.completed"
HELDOUT_SKIPPED = "heldout.skipped"
RUN_FINISHED = "run.finished"

EVENT_TYPES = (
    RUN_STARTED,
    CANDIDATE_REGISTERED,
    CANDIDATE_VALIDATED,
    EVALUATION_COMPLETED,
    EVALUATION_DISCARDED,
    ITERATION_STARTED,
    ITERATION_SKIPPED,
    PROPOSAL_COMPLETED,
    PROPOSAL_FAILED,
    CANDIDATE_ACCEPTED,
    CANDIDATE_REJECTED,
    CANDIDATE_DUPLICATE,
    VALIDATION_STAGE,
    CANDIDATE_DROPPED,
    CHAIN_EXTENDED,
    PROPOSAL_REBASED,
    CHAIN_ABANDONED,
    MERGE_PROPOSED,
    MERGE_ACCEPTED,
    MERGE_REJECTED,
    FRONTIER_UPDATED,
    BUDGET_UPDATED,
    CHECKPOINT,
    HELDOUT_COMPLETED,
    HELDOUT_SKIPPED,
    RUN_FINISHED,
)


class Emitter:
    """Forwards events to the sink and counts them, so a checkpoint knows where the
    feed stands and a resumed run continues with the next index."""

    def __init__(self, sink: EventSink, next_index: int = 0) -> None:
        self.sink = sink
        self.next_index = next_index

    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown engine event type {event_type!r}")
        self.sink.emit(event_type, data)
        self.next_index += 1
