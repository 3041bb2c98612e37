"""Synthetic run directories for the workspace benchmark and the workspace tests.

Each one is a real run: `GepaRun` opens it and writes its manifest, the real engine
drives it and the real recorder writes every file. Only the two outside parties are
offline stand-ins, named for what they are:

- `KeywordTask`, in place of a container: every example asks for three words of a
  vocabulary; a candidate scores the share it mentions, and the feedback names the
  missing ones. A few rollouts fail in transport (deterministically), as a flaky
  container's do.
- `KeywordProposer`, in place of a model: it adds one word the feedback says is
  missing, or now and then a word of its own choosing, so some children are rejected.

Both go through the run's response cache, so the cache profile and the ledgers' cache
actions agree as they do for a real run, and runs that share a cache directory hit
each other's entries (the seed's validation, at least). A spec's ``state`` ends the run
the way real runs end: ``finished`` by its budget, ``stopped`` by a STOP file (as
`gepa stop` writes), ``failed`` by a proposer that goes offline, and ``running`` by a
crash mid-run that leaves the lock of this process, rows after the last checkpoint and a
half-written last line, as a reader sees a run that is writing.

    from synthetic_runs import SyntheticSpec, write_synthetic_run
    write_synthetic_run(Path("runs"), SyntheticSpec("r1", seed=1))
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gepa_cli.artifacts import RunDirectory
from gepa_cli.config import config_from_dict
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
from gepa_cli.errors import ContainerError, ProposerError
from gepa_cli.runner import GepaRun
from gepa_cli.runner.control import request_stop
from gepa_cli.runtime.boundary import ResponseCache

SyntheticState = Literal["finished", "stopped", "failed", "running"]
ROLLOUT = "container.rollout"
PROPOSER = "proposer.command"
MODULE = "system_prompt"
SEED_TEXT = "Classify the banking request by its intent."
VOCABULARY = tuple(
    f"{a}{b}"
    for a in ("card", "loan", "fee", "atm", "pin", "top", "cash", "wire", "fx", "kyc")
    for b in ("", "_limit", "_status", "_refund", "_fraud", "_delay", "_lost", "_charge")
)
WORDS_PER_EXAMPLE = 3
TRANSPORT_FAILURE_RATE = 0.02
WANDERING_RATE = 0.3  # the share of proposals that add a word of the proposer's own
ROLLOUT_PRICE_PER_TOKEN = 1e-6
PROPOSAL_PRICE_PER_TOKEN = 2e-6
MISSING = re.compile(r"Missing: (.*)\.")


@dataclass
class SyntheticSpec:
    run_id: str
    state: SyntheticState = "finished"
    # proposals the run may make (its max_proposals), unless target_rollouts is set
    iterations: int = 6
    # when set, the run's max_total_rollouts: it stops before an iteration that would
    # pass it (iterations is then ignored)
    target_rollouts: int | None = None
    n_train: int = 20
    n_val: int = 8
    n_heldout: int = 4
    minibatch: int = 3
    seed: int = 0
    # "readwrite" keeps entries in ``cache_dir`` (default: ``<runs_dir>/../cache``);
    # "off" counts every call as live and stores nothing (the benchmark's million rows)
    cache_mode: Literal["readwrite", "off"] = "readwrite"
    cache_dir: Path | None = None
    # persist every n-th checkpoint (the engine emits one per iteration; its snapshot
    # grows with the run, so a long benchmark run keeps fewer on disk)
    checkpoint_every: int = 1


def _draw(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``: the same request always draws the same."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class KeywordTask:
    """The offline task behind the synthetic runs: the engine's `Evaluator`."""

    def __init__(self, spec: SyntheticSpec, cache: ResponseCache, run_dir: Path) -> None:
        self.cache = cache
        self.run_dir = run_dir
        self.crash_at: Midpoint | None = None
        self.stop_at: Midpoint | None = None
        self.rollouts = 0
        self.ids = {
            "train": [f"t{i:04d}" for i in range(spec.n_train)],
            "val": [f"v{i:04d}" for i in range(spec.n_val)],
            "heldout": [f"h{i:04d}" for i in range(spec.n_heldout)],
        }
        self.rows = {
            example: {
                "example_id": example,
                "question": f"Banking request {example}",
                # skewed: some words are asked for often, so what helps one example
                # tends to help others (and the validation mean can climb)
                "keywords": [
                    VOCABULARY[int(_draw(example, k) ** 2 * len(VOCABULARY))]
                    for k in range(WORDS_PER_EXAMPLE)
                ],
            }
            for ids in self.ids.values()
            for example in ids
        }

    async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
        return [await self._one(request, example) for example in request.example_ids]

    async def _one(self, request: EvaluationRequest, example: str) -> ExampleResult:
        self.rollouts += 1
        if self.crash_at is not None and self.crash_at.passed():
            raise SimulatedCrash(f"the process died at rollout {self.rollouts}")
        if self.stop_at is not None and self.stop_at.passed():
            request_stop(self.run_dir)  # what `gepa-cli gepa stop` does, mid-iteration
            self.stop_at = None
        row = self.rows[example]
        text = " ".join(request.texts.values())
        latency = round(5 + 900 * _draw("latency", text, example), 3)

        async def live() -> dict[str, Any]:
            if _draw("transport", text, example) < TRANSPORT_FAILURE_RATE:
                raise ContainerError(
                    "POST /rollout timed out after 3 attempts", attempts=3, fault="hang"
                )
            return _score(text, row)

        request_body = {"task_id": "synthetic", "candidate": dict(request.texts), "row": row}
        try:
            body, action = await self.cache.through(ROLLOUT, request_body, live)
        except ContainerError as exc:
            return ExampleResult(
                example,
                0.0,
                "failed",
                inputs={"question": row["question"]},
                error=f"ContainerError: {exc.one_line()}",
                meta={"cache_action": "live", "attempts": 3, "latency_ms": latency},
            )
        return ExampleResult(
            example,
            body["score"],
            "completed",
            output=body["output"],
            feedback=body["feedback"],
            usage=Usage.from_dict(body["usage"]),
            inputs={"question": row["question"]},
            meta={
                "cache_action": action,
                "attempts": 0 if action == "hit" else 1,
                "latency_ms": latency,
            },
        )


def _score(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    words = set(re.findall(r"[a-z_]+", text.lower()))
    wanted: list[str] = row["keywords"]
    found = [w for w in wanted if w in words]
    missing = [w for w in wanted if w not in words]
    tokens = len(text.split()) + 24
    return {
        "score": len(found) / len(wanted),
        "output": {"mentioned": found},
        "feedback": "All keywords present." if not missing else f"Missing: {', '.join(missing)}.",
        "usage": {
            "prompt_tokens": tokens,
            "completion_tokens": 8,
            "cost_usd": (tokens + 8) * ROLLOUT_PRICE_PER_TOKEN,
            "cost_known": True,
        },
    }


class KeywordProposer:
    """The offline proposer behind the synthetic runs: the engine's `Proposer`."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache
        self.fail_at: Midpoint | None = None
        self.calls = 0

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        self.calls += 1
        if self.fail_at is not None and self.fail_at.passed():
            raise ProposerError("the synthetic proposer went offline")
        prompt = _prompt(request)

        async def live() -> dict[str, Any]:
            text = _revise(request.current_text, request.records)
            tokens = len(prompt.split())
            return {
                "text": text,
                "usage": {
                    "prompt_tokens": tokens,
                    "completion_tokens": len(text.split()),
                    "cost_usd": (tokens + len(text.split())) * PROPOSAL_PRICE_PER_TOKEN,
                    "cost_known": True,
                },
            }

        body, action = await self.cache.through(
            PROPOSER, {"component": request.component, "prompt": prompt}, live
        )
        text = body["text"]
        return ProposalResult(
            new_text=text,
            usage=Usage.from_dict(body["usage"]),
            prompt=prompt,
            raw_output=f"```\n{text}\n```",
            meta={"cache_action": action},
        )


def _prompt(request: ProposalRequest) -> str:
    examples = "\n".join(
        f"- {r.example_id}: score {r.score:.2f}; {r.feedback}" for r in request.records
    )
    return f"Improve this instruction:\n{request.current_text}\nExamples:\n{examples}\n"


def _revise(text: str, records: Sequence[Any]) -> str:
    missing = sorted(
        {
            w.strip()
            for r in records
            if (m := MISSING.search(r.feedback or ""))
            for w in m[1].split(",")
        }
    )
    have = set(re.findall(r"[a-z_]+", text.lower()))
    choices = sorted(w for w in missing if w not in have)
    draw = _draw("revise", text, *(r.example_id for r in records))
    if not choices or draw < WANDERING_RATE:
        choices = [w for w in VOCABULARY if w not in have] or list(VOCABULARY)
    word = choices[int(_draw("word", draw) * len(choices))]
    return f"{text} Mind {word}."


class Midpoint:
    """Half of a run: half its rollout budget, or half its proposals."""

    def __init__(self, spec: SyntheticSpec, task: KeywordTask, proposer: KeywordProposer) -> None:
        self.spec, self.task, self.proposer = spec, task, proposer

    def passed(self) -> bool:
        if self.spec.target_rollouts is not None:
            return self.task.rollouts > self.spec.target_rollouts // 2
        return self.proposer.calls > max(1, self.spec.iterations // 2)


class SimulatedCrash(BaseException):
    """The end of a process nobody handles (not an `Exception`: nothing catches it)."""


class _EveryNth:
    """Persists every n-th checkpoint the engine takes (and the first)."""

    def __init__(self, sink: Any, every: int) -> None:
        self.sink = sink
        self.every = every
        self.seen = 0

    def save_checkpoint(self, snapshot: Mapping[str, Any]) -> None:
        self.seen += 1
        if self.seen == 1 or self.seen % self.every == 0:
            self.sink.save_checkpoint(snapshot)


class SyntheticRun(GepaRun):
    """A `GepaRun` whose task and proposer are the offline stand-ins above."""

    def __init__(self, spec: SyntheticSpec, runs_dir: Path) -> None:
        cache_dir = spec.cache_dir or runs_dir.parent / "cache"
        gepa: dict[str, Any] = {"minibatch_size": spec.minibatch}
        if spec.target_rollouts is not None:
            gepa["max_total_rollouts"] = spec.target_rollouts
        else:
            gepa["max_proposals"] = spec.iterations
        if spec.state == "failed":
            gepa["max_consecutive_proposer_failures"] = 2
        raw = {
            "run": {"run_id": spec.run_id, "output_dir": str(runs_dir), "seed": spec.seed},
            # never called: KeywordTask stands in for the container (.invalid never resolves)
            "container": {"url": "http://synthetic.invalid"},
            "dataset": {
                "train_split": "train",
                "train_seeds": f"0:{spec.n_train}",
                "val_seeds": f"0:{spec.n_val}",
                "heldout_split": "heldout",
                "heldout_seeds": f"0:{spec.n_heldout}",
            },
            "proposer": {"backend": "command", "command": ["synthetic-proposer"]},
            "gepa": gepa,
            "cache": {"mode": spec.cache_mode, "path": str(cache_dir), "namespace": "synthetic"},
        }
        config = config_from_dict(raw, base_dir=runs_dir, source="<synthetic>", environ={})
        super().__init__(config, base_dir=runs_dir)
        self.spec = spec
        self.opened: Any = None

    async def _run_engine(self, opened: Any) -> EngineResult:
        self.opened = opened
        spec, recorder = self.spec, opened.recorder
        task = KeywordTask(spec, opened.cache, opened.run_dir.root)
        proposer = KeywordProposer(opened.cache)
        # each state ends the run at its midpoint, the way real runs end that way
        midpoint = Midpoint(spec, task, proposer)
        if spec.state == "running":
            task.crash_at = midpoint
        elif spec.state == "stopped":
            task.stop_at = midpoint
        elif spec.state == "failed":
            proposer.fail_at = midpoint
        engine = GepaEngine(
            EngineSettings.from_mapping(self.config.gepa.model_dump()),
            recorder.recording_evaluator(task),
            recorder.recording_proposer(proposer, PROPOSER),
            recorder,
            opened.control,
            _EveryNth(recorder, spec.checkpoint_every),
            train_ids=task.ids["train"],
            val_ids=task.ids["val"],
            heldout_ids=task.ids["heldout"],
            seed_texts={MODULE: SEED_TEXT},
            target_modules=[MODULE],
            rng_seed=spec.seed,
            rollouts=recorder,
            memo_in_checkpoint=False,
        )
        return await engine.run()


def write_synthetic_run(runs_dir: Path, spec: SyntheticSpec) -> RunDirectory:
    """Make one run directory under ``runs_dir`` and return it."""
    runs_dir = Path(runs_dir)
    run = SyntheticRun(spec, runs_dir)
    rd = RunDirectory.for_run(runs_dir, spec.run_id)
    try:
        run.execute()
    except SimulatedCrash:
        # a live run's rows after its last checkpoint reach the disk between flushes,
        # and a reader may catch the line being written
        run.opened.recorder.ledgers.close()
        for path in (rd.events, rd.rollouts):
            with open(path, "ab") as handle:
                handle.write(b'{"candidate_id":"c0000","example_id":"t00')
    except (ProposerError, ContainerError):
        if spec.state != "failed":
            raise
    return rd
