"""Engine CPU per rollout: gepa-cli's engine against the reference `gepa` package.

Both engines optimize the same synthetic task in one process, with zero latency: a
candidate's score on an example is a fixed pseudo-random 0/1 of (its text, the
example), and the proposer appends a word drawn from the examples it was shown. Every
new text is a fresh draw, so about a third of the children pass their minibatch test,
almost none is better on validation, and the search stalls with hundreds of
candidates: the case where an engine's per-iteration bookkeeping (frontier, selection)
shows, since it runs for every candidate it holds.

Engine CPU is the process CPU time of the optimization minus the CPU spent inside the
task's own evaluate and propose functions (measured around each call), so it is what
each engine adds per rollout. gepa-cli runs `GepaEngine` with no event sink work and no
checkpoint sink (the reference keeps no run directory either); a second gepa-cli line
adds a checkpoint after every iteration, serialized as a real run would.

    python bench/engine_cpu.py [--budget 12000] [--val 60] [--seeds 0 1 2]

Any interpreter will do: it re-runs itself in bench/.venv-quality (reference_env.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_env

COMPONENT = "instructions"
WORDS = [f"w{i}" for i in range(64)]


class TaskClock:
    """CPU time spent inside the task's functions (subtracted from the engine's)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> TaskClock:
        self._start = time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds += time.process_time() - self._start


def unit(*parts: str) -> float:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def score(text: str, example: str) -> float:
    return 1.0 if unit(text, example) < 0.5 else 0.0


def propose(text: str, examples: Sequence[str]) -> str:
    word = WORDS[int(unit(text, *sorted(examples)) * len(WORDS))]
    return f"{text} {word}"


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}:{i}" for i in range(n)]


# --- gepa-cli --------------------------------------------------------------------------


def run_ours(budget: int, n_train: int, n_val: int, seed: int, checkpoints: bool) -> dict[str, Any]:
    import orjson

    from gepa_cli.engine import EngineSettings, GepaEngine
    from gepa_cli.engine.types import (
        EvaluationRequest,
        ExampleResult,
        ProposalRequest,
        ProposalResult,
    )

    clock = TaskClock()

    class Evaluator:
        async def evaluate(self, request: EvaluationRequest) -> list[ExampleResult]:
            with clock:
                text = request.texts[COMPONENT]
                return [
                    ExampleResult(example_id=e, score=score(text, e), output=e, feedback="")
                    for e in request.example_ids
                ]

    class Proposer:
        async def propose(self, request: ProposalRequest) -> ProposalResult:
            with clock:
                examples = [r.example_id for r in request.records]
                return ProposalResult(new_text=propose(request.current_text, examples))

    class Sink:
        def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
            return None

    class Checkpoints:
        def save_checkpoint(self, snapshot: Mapping[str, Any]) -> None:
            orjson.dumps(snapshot)

    class Control:
        def elapsed_seconds(self) -> float:
            return 0.0

        def stop_requested(self) -> str | None:
            return None

    settings = EngineSettings(max_total_rollouts=budget, minibatch_size=3)
    engine = GepaEngine(
        settings,
        Evaluator(),
        Proposer(),
        Sink(),
        Control(),
        Checkpoints() if checkpoints else None,
        train_ids=ids("train", n_train),
        val_ids=ids("val", n_val),
        seed_texts={COMPONENT: "seed"},
        rng_seed=seed,
    )
    started = time.process_time()
    result = asyncio.run(engine.run())
    cpu = time.process_time() - started
    rollouts = result.budget["rollouts"]["total"]
    return {
        "rollouts": rollouts,
        "candidates": result.num_candidates,
        "cpu": cpu,
        "task": clock.seconds,
    }


# --- the reference ---------------------------------------------------------------------


def run_reference(budget: int, n_train: int, n_val: int, seed: int) -> dict[str, Any]:
    import gepa
    from gepa.core.adapter import EvaluationBatch

    clock = TaskClock()

    class Adapter:
        def evaluate(
            self, batch: list[str], candidate: dict[str, str], capture_traces: bool = False
        ) -> EvaluationBatch:
            with clock:
                text = candidate[COMPONENT]
                scores = [score(text, e) for e in batch]
                return EvaluationBatch(
                    outputs=list(batch),
                    scores=scores,
                    trajectories=list(batch) if capture_traces else None,
                )

        def make_reflective_dataset(
            self,
            candidate: dict[str, str],
            eval_batch: EvaluationBatch,
            components_to_update: list[str],
        ) -> dict[str, list[dict[str, Any]]]:
            with clock:
                rows = [{"example": e} for e in eval_batch.trajectories or []]
                return {c: rows for c in components_to_update}

        def propose_new_texts(
            self,
            candidate: dict[str, str],
            reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
            components_to_update: list[str],
        ) -> dict[str, str]:
            with clock:
                return {
                    c: propose(candidate[c], [r["example"] for r in reflective_dataset[c]])
                    for c in components_to_update
                }

    class Quiet:
        def log(self, message: str) -> None:
            pass

    started = time.process_time()
    result = gepa.optimize(
        seed_candidate={COMPONENT: "seed"},
        trainset=ids("train", n_train),
        valset=ids("val", n_val),
        adapter=Adapter(),
        max_metric_calls=budget,
        reflection_minibatch_size=3,
        logger=Quiet(),
        seed=seed,
    )
    cpu = time.process_time() - started
    return {
        "rollouts": result.total_metric_calls,
        "candidates": result.num_candidates,
        "cpu": cpu,
        "task": clock.seconds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=12000)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--val", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    reference_env.ensure_environment(__file__)
    engines = {
        "gepa (reference)": lambda s: run_reference(args.budget, args.train, args.val, s),
        "gepa-cli": lambda s: run_ours(args.budget, args.train, args.val, s, False),
        "gepa-cli + checkpoints": lambda s: run_ours(args.budget, args.train, args.val, s, True),
    }
    print(f"budget {args.budget} rollouts, train {args.train}, val {args.val}, zero latency")
    print(
        f"{'engine':<24} {'candidates':>10} {'rollouts':>9} {'engine us/rollout':>18} {'ratio':>6}"
    )
    per_rollout: dict[str, float] = {}
    for name, run in engines.items():
        rows = [run(seed) for seed in args.seeds]
        micros = [1e6 * (r["cpu"] - r["task"]) / r["rollouts"] for r in rows]
        per_rollout[name] = statistics.fmean(micros)
        candidates = statistics.fmean(r["candidates"] for r in rows)
        rollouts = statistics.fmean(r["rollouts"] for r in rows)
        ratio = per_rollout[name] / per_rollout["gepa (reference)"]
        print(
            f"{name:<24} {candidates:>10.0f} {rollouts:>9.0f} {per_rollout[name]:>18.1f} "
            f"{ratio:>6.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
