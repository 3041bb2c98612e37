"""A fake task with a known optimum, and fake collaborators for the engine.

The task hides a target phrase: each example needs a few of its tokens, each token
belongs to one module, and the score is the share of needed tokens the candidate's
texts contain. Feedback names the missing tokens, so a proposer that reads it can
solve the task. Evaluator and proposer are stateless functions of their requests
(counters aside), as a cached runtime is, so a restored run sees the same answers.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gepa_cli.engine import (
    EngineResult,
    EngineSettings,
    EvaluationRequest,
    ExampleResult,
    GepaEngine,
    ProposalRequest,
    ProposalResult,
    Usage,
)
from gepa_cli.errors import ProposerError

TOKENS = [
    "amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "haven",
    "inlet", "juniper", "kelp", "lotus",
]  # fmt: skip


def _unit(*parts: Any) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@functools.cache  # asked millions of times for a few thousand pairs
def _need_rank(example_id: str, token: str) -> float:
    return _unit("need", example_id, token)


@dataclass
class PhraseTask:
    modules: tuple[str, ...] = ("system_prompt",)
    tokens_per_example: int = 3
    n_tokens: int = 8
    with_objectives: bool = False
    # tokens an example penalizes: they make the examples disagree, so no single
    # candidate is best everywhere and the frontier holds several
    forbidden_per_example: int = 0

    def owner(self, token: str) -> str:
        return self.modules[TOKENS.index(token) % len(self.modules)]

    def needed(self, example_id: str) -> list[str]:
        pool = TOKENS[: self.n_tokens]
        ranked = sorted(pool, key=lambda t: _need_rank(example_id, t))
        return sorted(ranked[: self.tokens_per_example])

    def forbidden(self, example_id: str) -> list[str]:
        pool = TOKENS[: self.n_tokens]
        ranked = sorted(pool, key=lambda t: _need_rank(example_id, t))
        start = self.tokens_per_example
        return sorted(ranked[start : start + self.forbidden_per_example])

    def has(self, texts: Mapping[str, str], token: str) -> bool:
        return token in texts.get(self.owner(token), "").split()

    def score(self, texts: Mapping[str, str], example_id: str) -> tuple[float, list[str]]:
        need = self.needed(example_id)
        missing = [t for t in need if not self.has(texts, t)]
        unwanted = [t for t in self.forbidden(example_id) if self.has(texts, t)]
        raw = (len(need) - len(missing) - 0.5 * len(unwanted)) / len(need)
        return max(0.0, raw), missing

    def seed_texts(self) -> dict[str, str]:
        return {m: f"You are the {m} module." for m in self.modules}


@dataclass
class FakeEvaluator:
    task: PhraseTask
    usage: Usage = field(default_factory=lambda: Usage(10, 5, 0.001))
    requests: list[EvaluationRequest] = field(default_factory=list)
    dispatched: int = 0

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        self.requests.append(request)
        self.dispatched += len(request.example_ids)
        await asyncio.sleep(0)
        out = []
        for eid in request.example_ids:
            score, missing = self.task.score(request.texts, eid)
            feedback = (
                "all good"
                if not missing
                else "missing: " + ", ".join(f"{t}@{self.task.owner(t)}" for t in missing)
            )
            objectives: dict[str, float] = {}
            if self.task.with_objectives:
                length = sum(len(t) for t in request.texts.values())
                objectives = {"coverage": score, "brevity": round(100 / (100 + length), 6)}
            out.append(
                ExampleResult(
                    example_id=eid,
                    score=score,
                    output=" ".join(sorted(request.texts.values())),
                    feedback=feedback,
                    objectives=objectives,
                    usage=self.usage,
                    inputs={"example": eid},
                    meta={"latency_ms": 12.5},
                )
            )
        return out


@dataclass
class FeedbackProposer:
    """Adds one token the feedback says is missing for this component. With ``noise``
    it sometimes adds a wrong token instead (decided by a hash of the request, so the
    same request always gets the same answer)."""

    noise: float = 0.0
    usage: Usage = field(default_factory=lambda: Usage(100, 20, 0.01))
    calls: int = 0

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        self.calls += 1
        wanted: list[str] = []
        for record in request.records:
            for part in record.feedback.removeprefix("missing: ").split(", "):
                token, _, module = part.partition("@")
                if module == request.component and token not in wanted:
                    wanted.append(token)
        key = (request.current_text, request.component, [r.example_id for r in request.records])
        roll = _unit("propose", key)
        if not wanted or roll < self.noise:
            word = f"noise{int(_unit('word', key) * 1000)}"
        else:
            word = sorted(wanted)[int(roll * len(wanted)) % len(wanted)]
        return ProposalResult(
            new_text=f"{request.current_text} {word}",
            usage=self.usage,
            prompt="reflect",
            raw_output=word,
        )


@dataclass
class ScriptedProposer:
    """Answers from a list: a string is a new text, an exception is raised, and a
    ("reject", reason) tuple is a rejected answer. The last entry repeats."""

    script: Sequence[Any]
    calls: int = 0

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        item = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(item, Exception):
            raise item
        if isinstance(item, tuple):
            return ProposalResult(new_text=None, rejection=item[1])
        if callable(item):
            return ProposalResult(new_text=item(request))
        return ProposalResult(new_text=str(item))


def proposer_error(reason: str) -> ProposerError:
    return ProposerError(reason)


@dataclass
class RecordingSink:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        # a JSON round trip proves every event is plain data
        self.events.append((event_type, json.loads(json.dumps(data, allow_nan=False))))

    def types(self) -> list[str]:
        return [t for t, _ in self.events]

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [d for t, d in self.events if t == event_type]


@dataclass
class Snapshots:
    """Each checkpoint kept as the bytes the recorder would write (orjson), decoded when
    a test reads them: a long run then holds no millions of live objects for the
    garbage collector to walk at every allocation."""

    encoded: list[bytes] = field(default_factory=list)

    def save_checkpoint(self, snapshot: Mapping[str, Any]) -> None:
        self.encoded.append(orjson.dumps(snapshot))

    @property
    def saved(self) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in self.encoded]


@dataclass
class FakeControl:
    elapsed: float = 0.0
    stop_after_checks: int | None = None
    reason: str = "stop_file"
    checks: int = 0

    def elapsed_seconds(self) -> float:
        return self.elapsed

    def stop_requested(self) -> str | None:
        self.checks += 1
        if self.stop_after_checks is not None and self.checks > self.stop_after_checks:
            return self.reason
        return None


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}:{i}" for i in range(n)]


@dataclass
class Run:
    engine: GepaEngine
    sink: RecordingSink
    snapshots: Snapshots
    evaluator: FakeEvaluator
    proposer: Any
    control: FakeControl


def make_run(
    settings: EngineSettings,
    *,
    task: PhraseTask | None = None,
    proposer: Any = None,
    n_train: int = 6,
    n_val: int = 6,
    n_heldout: int = 0,
    rng_seed: int = 0,
    control: FakeControl | None = None,
    evaluator: FakeEvaluator | None = None,
) -> Run:
    task = task or PhraseTask()
    evaluator = evaluator or FakeEvaluator(task)
    proposer = proposer if proposer is not None else FeedbackProposer()
    sink, snapshots, control = RecordingSink(), Snapshots(), control or FakeControl()
    engine = GepaEngine(
        settings,
        evaluator,
        proposer,
        sink,
        control,
        snapshots,
        train_ids=ids("train", n_train),
        val_ids=ids("val", n_val),
        heldout_ids=ids("test", n_heldout),
        seed_texts=task.seed_texts(),
        target_modules=list(task.modules),
        rng_seed=rng_seed,
    )
    return Run(engine, sink, snapshots, evaluator, proposer, control)


def execute(run: Run) -> EngineResult:
    return asyncio.run(run.engine.run())
