"""The typed schema of a run directory: every ledger row and every JSON document.

Writers (the recorder, the runner) build these models and write their dump; readers
(resume, replay --check, workspace status, the DuckDB views, the service) load files
into them. Field names and types live here once; `gepa_cli.artifacts.layout` names the
files. Reading ignores unknown fields, so a newer writer's extra field never makes a
file unreadable; a missing or mistyped field is a typed error naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gepa_cli.artifacts.ledger import LedgerOffset, iter_jsonl
from gepa_cli.errors import GepaCliError

CHECKPOINT_FORMAT = "gepa_cli.run.checkpoint.v2"
# v1 held the engine snapshot inline; it is still read, so older runs stay healthy
CHECKPOINT_V1 = "gepa_cli.run.checkpoint.v1"
CHECKPOINT_FORMATS = (CHECKPOINT_V1, CHECKPOINT_FORMAT)
CACHE_PROFILE_SCHEMA = 1


class Record(BaseModel):
    """Base of every row and document: unknown fields are ignored when reading."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """Plain JSON data with the on-disk field names."""
        return self.model_dump(by_alias=True)


# -- ledger rows -------------------------------------------------------------------------


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True


class UsageTotals(Usage):
    """Usage summed over the calls of one boundary (manifest ``usage``, runner spend)."""

    calls: int = 0


class EventLine(Record):
    """One line of events.jsonl; ``data`` is documented per type in docs/events.md."""

    seq: int
    ts: str | None = None  # absent from a normalized feed
    type: str
    run_id: str | None = None  # absent from a normalized feed
    data: dict[str, Any]


class RolloutRow(Record):
    """One line of rollouts.jsonl: one dispatched evaluation of one example.

    An online session writes one row per served call (``split = "online"``, the rollout
    id as ``example_id``, the caller's messages as ``inputs``) with ``score`` null: its
    reward, if one comes, is a row of rewards.jsonl.
    """

    candidate_id: str
    example_id: str
    split: str
    # the texts' content hash: with the example, the key of the engine's memo, which a
    # resumed run rebuilds from these rows
    content_hash: str | None = None
    score: float | None
    status: str
    feedback: str | None = None
    output: Any = None
    inputs: Any = None
    objectives: dict[str, float] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    cache_action: str | None = None
    latency_ms: float | None = None
    attempts: int | None = None
    # fetched ahead for an iteration whose commit did not use it: charged, never a
    # memo entry (docs/events.md, evaluation.discarded)
    discarded: bool = False


class ProposalRow(Record):
    """One line of proposals.jsonl: one proposer call and what became of its text."""

    proposal_id: str
    iteration: int | None = None
    parent_id: str | None = None
    component: str | None = None
    prompt: str | None = None
    raw_output: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    cache_action: str | None = None
    new_text: str | None = None
    # what became of it (docs/run-directory.md, "The proposals ledger"):
    # accepted | rejected | dropped: <reason>  -- its text was evaluated (cost rollouts)
    # duplicate: <reason> | not_evaluated     -- it had a text, never evaluated
    # unusable: <label> | error: <message>    -- no usable text came back
    outcome: str
    candidate_id: str | None = None
    # whether its text was evaluated with rollouts (so it cost more than the call)
    evaluated: bool = False
    # why the model stopped writing, as the backend says ("stop", "length", ...)
    finish_reason: str | None = None


class RewardRow(Record):
    """One line of rewards.jsonl (online sessions): the reward of one served rollout."""

    rollout_id: str
    candidate_id: str
    score: float
    feedback: str | None = None
    objectives: dict[str, float] = Field(default_factory=dict)


class CandidateRow(Record):
    """One line of candidates.jsonl: a validated candidate."""

    candidate_id: str
    content_hash: str
    parents: list[str]
    origin: str
    iteration: int | None = None
    proposal_id: str | None = None
    texts: dict[str, str]
    val_mean: float
    val_count: int
    objective_means: dict[str, float] = Field(default_factory=dict)


# -- JSON documents ----------------------------------------------------------------------


class FrontierDoc(Record):
    """frontier.json: the data of the last ``frontier.updated`` event."""

    frontier_type: str | None = None
    frontier: dict[str, list[str]]
    best_scores: dict[str, float]
    best_candidate_id: str
    best_val_mean: float


class BoundaryCounts(Record):
    hits: int = 0
    misses: int = 0
    writes: int = 0
    not_stored: int = 0


class CacheProfileDoc(Record):
    """cache_profile.json: what the response cache counted this run, by boundary."""

    schema_version: int = Field(CACHE_PROFILE_SCHEMA, alias="schema")
    namespace: str
    mode: str
    boundaries: dict[str, BoundaryCounts] = Field(default_factory=dict)
    totals: BoundaryCounts = Field(default_factory=BoundaryCounts)


class StateChange(Record):
    state: str
    at: str


class SpendDoc(Record):
    """Usage recorded by the runner, and the part of its cost that went live."""

    spent_usd: float = 0.0
    # False once a call that went live had no price: spent_usd is then a lower bound
    spent_known: bool = True
    by_boundary: dict[str, UsageTotals] = Field(default_factory=dict)


class RunnerState(Record):
    run_id: str
    started_at: str
    elapsed_seconds: float = 0.0
    spend: SpendDoc = Field(default_factory=SpendDoc)
    cache_profile: CacheProfileDoc | None = None
    state_history: list[StateChange] = Field(default_factory=list)


class SnapshotRef(Record):
    """The engine snapshot file a checkpoint belongs to (``layout.SNAPSHOT``)."""

    file: str
    sha256: str
    bytes: int


class CheckpointDoc(Record):
    """checkpoint.json: the ledger offsets, the runner's state and the engine snapshot
    (the engine's own format) they belong to, which lives in the file ``snapshot``
    names. The snapshot is written first under a new name and the checkpoint, renamed
    over the old one, commits the pair."""

    format: str
    snapshot: SnapshotRef | None = None
    # v1 only: the snapshot inline
    engine: dict[str, Any] | None = None
    ledgers: dict[str, LedgerOffset]
    next_seq: int
    runner: RunnerState

    def dump(self) -> dict[str, Any]:
        data = super().dump()
        for key in ("engine", "snapshot"):
            if data[key] is None:
                del data[key]  # each format has only its own
        return data


class ResolvedConfigDoc(Record):
    """config.resolved.json: the validated config, nested under ``config``."""

    config_path: str | None = None
    base_dir: str | None = None
    config: dict[str, Any]

    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def proposer_backend(self) -> str | None:
        backend = self.section("proposer").get("backend")
        return backend if isinstance(backend, str) else None


class Budget(Record):
    """What a run used, as the engine counts it (``budget.updated`` without its
    iteration and limits)."""

    rollouts: dict[str, int]
    proposals: int
    tokens: int
    cost_usd: float
    cost_known: bool = True


class BestCandidate(Record):
    id: str
    texts: dict[str, str] | None = None
    val_mean: float | None = None
    val_count: int | None = None
    heldout_mean: float | None = None


class SeedCandidate(Record):
    id: str
    val_mean: float | None = None
    val_count: int | None = None
    heldout_mean: float | None = None


class FrontierMember(Record):
    """One candidate on the run's last frontier, with the scores to choose among them."""

    candidate_id: str
    val_mean: float | None = None
    objective_means: dict[str, float] = Field(default_factory=dict)
    heldout_mean: float | None = None  # None unless the run evaluated it on heldout
    fronts: int = 0  # how many frontier keys it is best on


class FrontierSummary(Record):
    """The run's Pareto frontier as its members, strongest validation mean first."""

    frontier_type: str | None = None
    members: list[FrontierMember] = Field(default_factory=list)


class CacheSettings(Record):
    mode: str
    namespace: str
    path: str


class ErrorInfo(Record):
    """A `GepaCliError` as ``to_dict`` gives it."""

    error_code: str
    message: str
    details: dict[str, Any] | None = None


class ListenerError(Record):
    """An event listener that raised: it was detached and the run went on."""

    listener: str
    seq: int
    error: str


class ArtifactDigest(Record):
    sha256: str
    bytes: int


class Manifest(Record):
    """manifest.json: the result of a run, written last."""

    run_id: str
    config_path: str | None = None
    state: str
    stopped_by: str | None = None
    started_at: str
    finished_at: str
    best_candidate: BestCandidate | None = None
    seed_candidate: SeedCandidate | None = None
    heldout_count: int | None = None
    budget: Budget | None = None
    usage: dict[str, UsageTotals] = Field(default_factory=dict)
    cost_usd: float = 0.0
    cost_known: bool = True
    cost_note: str | None = None
    spent_usd: float = 0.0
    spent_known: bool = True
    num_candidates: int | None = None
    iterations: int | None = None
    frontier: FrontierSummary | None = None
    cache: CacheSettings | None = None
    error: ErrorInfo | None = None
    listener_errors: list[ListenerError] = Field(default_factory=list)
    state_history: list[StateChange] = Field(default_factory=list)
    # an online session's lifecycle state, incumbent, challengers and per-candidate
    # reward statistics and usage (docs/online.md); absent for offline runs
    online: dict[str, Any] | None = None
    artifacts: dict[str, ArtifactDigest] = Field(default_factory=dict)


# -- reading -----------------------------------------------------------------------------

M = TypeVar("M", bound=Record)


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def parse_document(
    path: Path,
    raw: bytes,
    model: type[M],
    *,
    error: type[GepaCliError] = GepaCliError,
    hint: str = "restore the file from a copy, or rerun the run",
) -> M:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON ({exc})", hint=hint, file=str(path)) from None
    if not isinstance(data, dict):
        raise error(f"{path} is not a JSON object", hint=hint, file=str(path))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(
            f"{path} is not a valid {path.name}: {_first_problem(exc)}", hint=hint, file=str(path)
        ) from None


def read_document(
    path: Path,
    model: type[M],
    *,
    error: type[GepaCliError] = GepaCliError,
    hint: str = "restore the file from a copy, or rerun the run",
) -> M | None:
    """The document at ``path``; None when there is no such file. A file that cannot be
    read, is not JSON or is not of this shape raises ``error`` naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}", hint=hint, file=str(path)) from None
    return parse_document(path, raw, model, error=error, hint=hint)


def read_snapshot(
    root: Path, checkpoint: CheckpointDoc, *, error: type[GepaCliError] = GepaCliError
) -> dict[str, Any]:
    """The engine snapshot ``checkpoint`` names (in run directory ``root``), checked
    against its recorded size and sha256; a v1 checkpoint holds it inline."""
    hint = "the run directory was modified after the checkpoint; start a new run"
    if checkpoint.snapshot is None:
        if checkpoint.engine is None:
            raise error(f"the checkpoint in {root} names no engine snapshot", hint=hint)
        return checkpoint.engine
    ref = checkpoint.snapshot
    path = root / ref.file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read the engine snapshot {path}: {exc.strerror}", hint=hint) from None
    if len(raw) != ref.bytes or hashlib.sha256(raw).hexdigest() != ref.sha256:
        raise error(f"{path} is not the snapshot its checkpoint recorded", hint=hint)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON ({exc})", hint=hint) from None
    if not isinstance(data, dict):
        raise error(f"{path} is not a JSON object", hint=hint)
    return data


def read_rows(
    path: Path, model: type[M], *, error: type[GepaCliError] = GepaCliError
) -> Iterator[tuple[int, M]]:
    """(1-based line number, row) for each complete line of a ledger (see `iter_jsonl`)."""
    for number, obj in iter_jsonl(path, error=error):
        try:
            yield number, model.model_validate(obj)
        except ValidationError as exc:
            raise error(
                f"{path} line {number} is not a valid {path.name} row: {_first_problem(exc)}",
                hint="fix or remove that line, or restore the file from a copy",
                file=str(path),
                line=number,
            ) from None
