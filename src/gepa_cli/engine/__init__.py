"""The GEPA algorithm: pure Python, no IO, no clock, no threads."""

from gepa_cli.engine.budget import BudgetPreview, Ledger, preview_budget
from gepa_cli.engine.checkpoint import SNAPSHOT_FORMAT
from gepa_cli.engine.events import EVENT_TYPES
from gepa_cli.engine.loop import GepaEngine
from gepa_cli.engine.outcome import STOPPED_BY, RunOutcome
from gepa_cli.engine.result import EngineResult
from gepa_cli.engine.settings import EngineSettings
from gepa_cli.engine.speculation import Lanes
from gepa_cli.engine.state import Candidate, EngineState, MemoEntry, content_hash
from gepa_cli.engine.types import (
    CheckpointSink,
    Control,
    EvaluationRequest,
    Evaluator,
    EventSink,
    ExampleResult,
    ProposalRequest,
    ProposalResult,
    Proposer,
    ReflectiveRecord,
    Usage,
)
from gepa_cli.engine.validation import FullValidation, ValidationPolicy

__all__ = [
    "EVENT_TYPES",
    "SNAPSHOT_FORMAT",
    "STOPPED_BY",
    "BudgetPreview",
    "Candidate",
    "CheckpointSink",
    "Control",
    "EngineResult",
    "EngineSettings",
    "EngineState",
    "EvaluationRequest",
    "Evaluator",
    "EventSink",
    "ExampleResult",
    "FullValidation",
    "GepaEngine",
    "Lanes",
    "Ledger",
    "MemoEntry",
    "ProposalRequest",
    "ProposalResult",
    "Proposer",
    "ReflectiveRecord",
    "RunOutcome",
    "Usage",
    "ValidationPolicy",
    "content_hash",
    "preview_budget",
]
