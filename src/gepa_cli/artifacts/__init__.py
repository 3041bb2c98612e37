"""The run directory: event feeds, ledgers, registry, frontier, checkpoint, manifest.

`layout` names the files; `schema` defines the shape of each one.
"""

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.atomic import write_bytes_atomic, write_json_atomic
from gepa_cli.artifacts.compare import CompareResult, compare_feeds
from gepa_cli.artifacts.events import (
    VOLATILE_KEYS,
    VOLATILE_SUFFIXES,
    EventWriter,
    normalize_event,
    normalize_file,
)
from gepa_cli.artifacts.ledger import JsonlLedger, LedgerOffset, iter_jsonl, read_jsonl
from gepa_cli.artifacts.liveness import RunLock, lock_status
from gepa_cli.artifacts.manifest import StateHistory, artifact_digests, write_manifest
from gepa_cli.artifacts.registry import RunRecord, RunRegistry
from gepa_cli.artifacts.rundir import Ledgers, RunDirectory
from gepa_cli.artifacts.schema import (
    CHECKPOINT_FORMAT,
    CandidateRow,
    CheckpointDoc,
    Manifest,
    ProposalRow,
    RolloutRow,
    read_document,
    read_rows,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "VOLATILE_KEYS",
    "VOLATILE_SUFFIXES",
    "CandidateRow",
    "CheckpointDoc",
    "CompareResult",
    "EventWriter",
    "JsonlLedger",
    "LedgerOffset",
    "Ledgers",
    "Manifest",
    "ProposalRow",
    "RolloutRow",
    "RunDirectory",
    "RunLock",
    "RunRecord",
    "RunRegistry",
    "StateHistory",
    "artifact_digests",
    "compare_feeds",
    "iter_jsonl",
    "layout",
    "lock_status",
    "normalize_event",
    "normalize_file",
    "read_document",
    "read_jsonl",
    "read_rows",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_manifest",
]
