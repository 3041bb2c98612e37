"""The data that crosses the engine boundary, and the two protocols the engine drives.

The engine sees the outside world only through an `Evaluator` (run a candidate on
examples) and a `Proposer` (turn a reflective dataset into a new text). Both are
async so the runtime can run rollouts concurrently; the engine awaits whole batches
and so makes its decisions in one deterministic order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# module name (the candidate field, e.g. "system_prompt") -> text
Texts = Mapping[str, str]

RolloutStatus = Literal["completed", "failed"]


@dataclass(frozen=True)
class Usage:
    """Tokens and recorded cost of one call. ``cost_known`` is False when no price applies."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
            self.cost_known and other.cost_known,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "cost_known": self.cost_known,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            float(data.get("cost_usd", 0.0)),
            bool(data.get("cost_known", True)),
        )


@dataclass(frozen=True)
class EvaluationRequest:
    """Evaluate one candidate on some examples of one split."""

    candidate_id: str
    texts: Texts
    example_ids: Sequence[str]
    split: str  # "train", "val" or "heldout": the role, not the container's split name
    capture_traces: bool = False


@dataclass(frozen=True)
class ExampleResult:
    """The outcome of one rollout. A failed rollout has score 0 and an ``error``."""

    example_id: str
    score: float
    status: RolloutStatus = "completed"
    output: Any = None
    feedback: str = ""
    objectives: Mapping[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    inputs: Mapping[str, Any] = field(default_factory=dict)  # task fields of the dataset row
    trace: Any = None  # only when traces were asked for
    error: str | None = None  # "ErrorClass: message" for failed rollouts
    # runtime facts the engine ignores but the ledger records: cache action, latency,
    # attempts, rollout id. Never part of a decision, so never part of determinism.
    meta: Mapping[str, Any] = field(default_factory=dict)


class Evaluator(Protocol):
    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        """One result per requested example id, in request order. Never raises for a
        single failed rollout (that is a failed result); raises `ContainerError` when
        the container is down and `CacheMissError` on a readonly miss."""
        ...


@dataclass(frozen=True)
class ReflectiveRecord:
    """One example shown to the proposer: what went in, what came out, how it scored."""

    example_id: str
    inputs: Mapping[str, Any]
    output: Any
    score: float
    feedback: str


@dataclass(frozen=True)
class ProposalRequest:
    parent_id: str
    component: str
    current_text: str
    candidate: Texts
    records: Sequence[ReflectiveRecord]
    # the id the engine numbered this call with (p0001, ...): ledgers match the call's
    # prompt and raw answer to its proposal by it. Never part of a cache key: the same
    # request under another number is the same call.
    proposal_id: str = ""


@dataclass(frozen=True)
class ProposalResult:
    """A proposer's answer. Exactly one of ``new_text`` and ``rejection`` is set.

    ``rejection`` is a short reason ("empty", "truncated", "unchanged", ...) for an
    answer that must not be adopted; the engine records it and spends no evaluation.
    """

    new_text: str | None
    rejection: str | None = None
    usage: Usage = field(default_factory=Usage)
    prompt: str = ""
    raw_output: str = ""
    # runtime facts for the proposals ledger (cache action); never part of a decision
    meta: Mapping[str, Any] = field(default_factory=dict)


class Proposer(Protocol):
    async def propose(self, request: ProposalRequest) -> ProposalResult:
        """Raises `ProposerError` when the proposer itself failed (timeout, crash)."""
        ...


class EventSink(Protocol):
    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Receive one engine event, in the engine's logical order."""
        ...


class Control(Protocol):
    """What the engine may ask its caller: the time used so far and whether to stop."""

    def elapsed_seconds(self) -> float: ...

    def stop_requested(self) -> str | None:
        """A reason ("stop_file", "interrupted", "cancelled") or None."""
        ...


class CheckpointSink(Protocol):
    def save_checkpoint(self, snapshot: Mapping[str, Any]) -> None:
        """Persist a JSON-serializable engine snapshot (called right after the
        ``checkpoint`` event it belongs to was emitted)."""
        ...


class RolloutSink(Protocol):
    def record_rollouts(
        self,
        request: EvaluationRequest,
        results: Sequence[ExampleResult],
        *,
        discarded: bool = False,
    ) -> None:
        """The rollouts charged to the run, in the engine's logical order: one ledger
        row each. (A rollout an overlapping iteration fetched ahead of its commit is
        charged, and reported here, when that iteration commits; ``discarded`` when the
        commit did not use it.)"""
        ...


class Prefetched(Protocol):
    def take(self, digest: str, example_ids: Sequence[str]) -> dict[str, ExampleResult]:
        """The results fetched ahead for these texts on these examples; each is given
        out once."""
        ...

    def owes(self, digest: str, example_id: str) -> bool:
        """Whether this pair was dispatched for the iteration (so it is charged to it
        even if the memo has it by now)."""
        ...
