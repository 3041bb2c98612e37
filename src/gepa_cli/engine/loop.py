"""The one engine loop: select, reflect, propose, test on the minibatch, validate.

Every decision is made from the run state and the single seeded RNG, in one order,
so the same seed gives the same run, and a run restored from any checkpoint makes
the same decisions and emits the same remaining events as one never interrupted.
The steps live in their own modules (reflection, merge_step, admission) as functions
of one narrow `StepContext`, so they all read and advance this one state and RNG.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from gepa_cli.engine import events as ev
from gepa_cli.engine.admission import register, validate
from gepa_cli.engine.budget import BudgetGuard, Work, heldout_reserve
from gepa_cli.engine.checkpoint import (
    SNAPSHOT_FORMAT,
    check_snapshot,
    rng_from_json,
    rng_state_to_json,
)
from gepa_cli.engine.context import StepContext, Strategies
from gepa_cli.engine.evaluation import BudgetStop, MemoEvaluator
from gepa_cli.engine.finish import emit_finished, finish, heldout
from gepa_cli.engine.iteration import finish_chain, plan_iteration, run_iteration
from gepa_cli.engine.pipeline import Pipeline
from gepa_cli.engine.reflection import ProposerGaveUp, failure_message, give_up_hint
from gepa_cli.engine.result import EngineResult
from gepa_cli.engine.sampler import EpochShuffledSampler
from gepa_cli.engine.settings import EngineSettings
from gepa_cli.engine.speculation import Lanes
from gepa_cli.engine.state import Candidate, EngineState, MemoEntry, content_hash
from gepa_cli.engine.types import (
    CheckpointSink,
    Control,
    Evaluator,
    EventSink,
    Proposer,
    RolloutSink,
)
from gepa_cli.errors import BudgetError, ConfigError, ProposerError, ResumeError


class GepaEngine:
    def __init__(
        self,
        settings: EngineSettings,
        evaluator: Evaluator,
        proposer: Proposer,
        sink: EventSink,
        control: Control,
        checkpoints: CheckpointSink | None,
        *,
        train_ids: Sequence[str],
        val_ids: Sequence[str],
        heldout_ids: Sequence[str] = (),
        seed_texts: Mapping[str, str],
        target_modules: Sequence[str] | None = None,
        rng_seed: int = 0,
        rollouts: RolloutSink | None = None,
        lanes: Lanes | None = None,
        memo_in_checkpoint: bool = True,
    ) -> None:
        modules = list(target_modules) if target_modules is not None else sorted(seed_texts)
        _check_inputs(train_ids, val_ids, heldout_ids, seed_texts, modules)
        state = EngineState(
            target_modules=modules,
            train_ids=list(train_ids),
            val_ids=list(val_ids),
            heldout_ids=list(heldout_ids),
        )
        self.rng_seed = rng_seed
        self._setup(
            settings,
            evaluator,
            proposer,
            sink,
            control,
            checkpoints,
            state,
            random.Random(rng_seed),
            rollouts,
            lanes,
        )
        self.seed_texts = {str(k): str(v) for k, v in seed_texts.items()}
        self.started = False
        self.checkpoints_taken = 0
        self.memo_in_checkpoint = memo_in_checkpoint

    def _setup(
        self,
        settings: EngineSettings,
        evaluator: Evaluator,
        proposer: Proposer,
        sink: EventSink,
        control: Control,
        checkpoints: CheckpointSink | None,
        state: EngineState,
        rng: random.Random,
        rollouts: RolloutSink | None,
        lanes: Lanes | None,
    ) -> None:
        self.settings = settings
        self.control = control
        self.checkpoints = checkpoints
        self.state = state
        self.rng = rng
        self.emitter = ev.Emitter(sink)
        self.stopped_externally = False
        self.guard = BudgetGuard(
            settings, state.ledger, heldout_reserve(settings, len(state.heldout_ids))
        )
        self.evals = MemoEvaluator(
            evaluator, state, self.guard, self.emitter, control.elapsed_seconds, rollouts=rollouts
        )
        self.strategies = Strategies.from_settings(settings)
        self.sampler = EpochShuffledSampler(
            state.train_ids,
            self.strategies.schedule.size(settings.minibatch_size, len(state.val_ids)),
        )
        self.ctx = StepContext(
            settings=settings,
            state=state,
            strategies=self.strategies,
            rng=rng,
            sampler=self.sampler,
            evals=self.evals,
            proposer=proposer,
            emitter=self.emitter,
            guard=self.guard,
            control=control,
        )
        self.pipeline = (
            Pipeline(self, lanes or Lanes())
            if settings.pipeline_mode == "async_pipelined"
            else None
        )

    @property
    def proposer(self) -> Proposer:
        return self.ctx.proposer

    @proposer.setter
    def proposer(self, proposer: Proposer) -> None:
        self.ctx.proposer = proposer

    # --- checkpoints -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue this run; plain JSON data."""
        return {
            "format": SNAPSHOT_FORMAT,
            "settings": self.settings.to_dict(),
            "rng_seed": self.rng_seed,
            "rng_state": rng_state_to_json(self.rng),
            "sampler": self.sampler.to_dict(),
            "state": self.state.to_dict(memo=self.memo_in_checkpoint),
            "seed_texts": dict(self.seed_texts),
            "next_event_index": self.emitter.next_index,
            "checkpoints_taken": self.checkpoints_taken,
            # iterations planned but not committed (overlapping iterations only)
            "in_flight": self.pipeline.snapshot() if self.pipeline is not None else [],
        }

    @classmethod
    def restore(
        cls,
        snapshot: Mapping[str, Any],
        evaluator: Evaluator,
        proposer: Proposer,
        sink: EventSink,
        control: Control,
        checkpoints: CheckpointSink | None,
        *,
        settings: EngineSettings | None = None,
        rollouts: RolloutSink | None = None,
        lanes: Lanes | None = None,
        memo: Mapping[str, Mapping[str, MemoEntry]] | None = None,
    ) -> GepaEngine:
        """Continue a run from a snapshot. ``settings`` may raise budgets; any other
        change would make a different run, so it is refused. A snapshot taken without
        its memo needs ``memo`` (rebuilt by the caller from its rollout ledger)."""
        check_snapshot(snapshot)
        try:
            saved = EngineSettings.from_mapping(snapshot["settings"])
            state = EngineState.from_dict(snapshot["state"])
            kept = snapshot["state"].get("memo") is not None
            if not kept:
                if memo is None:
                    raise ResumeError(
                        "checkpoint was taken without its memo and none was given",
                        hint="resume through the runner (gepa-cli gepa resume), which "
                        "rebuilds it from rollouts.jsonl",
                    )
                state.memo = {digest: dict(rows) for digest, rows in memo.items()}
            rng = rng_from_json(snapshot["rng_state"])
            engine = cls.__new__(cls)
            if settings is not None:
                changed = saved.changed_search_fields(settings)
                if changed:
                    raise ResumeError(
                        f"checkpoint was written with different {', '.join(changed)}",
                        hint="resume with the original [gepa] settings (only budgets may change)",
                    )
            engine._setup(
                settings or saved,
                evaluator,
                proposer,
                sink,
                control,
                checkpoints,
                state,
                rng,
                rollouts,
                lanes,
            )
            in_flight = list(snapshot.get("in_flight", []))
            if engine.pipeline is not None:
                engine.pipeline.restore(in_flight)
            engine.sampler.load(snapshot["sampler"])
            engine.rng_seed = int(snapshot["rng_seed"])
            engine.seed_texts = {str(k): str(v) for k, v in snapshot["seed_texts"].items()}
            engine.emitter.next_index = int(snapshot["next_event_index"])
            engine.checkpoints_taken = int(snapshot["checkpoints_taken"])
            engine.memo_in_checkpoint = kept
            engine.started = True
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ResumeError(
                f"checkpoint does not fit this engine: {type(exc).__name__}: {exc}",
                hint="the checkpoint is damaged or from another version; start a new run",
            ) from exc
        if not engine.state.candidates:
            raise ResumeError("checkpoint holds no candidates", hint="start a new run")
        return engine

    def safe_point(self) -> None:
        self.emitter.emit(ev.BUDGET_UPDATED, self._budget_data())
        self.checkpoints_taken += 1
        self.emitter.emit(
            ev.CHECKPOINT,
            {
                "checkpoint_index": self.checkpoints_taken,
                "iteration": self.state.counters.iteration,
                "next_event_index": self.emitter.next_index + 1,
            },
        )
        if self.checkpoints is not None:
            self.checkpoints.save_checkpoint(self.snapshot())

    def _budget_data(self) -> dict[str, Any]:
        s = self.settings
        limits = {
            name: getattr(s, name)
            for name in (
                "max_total_rollouts",
                "max_train_rollouts",
                "max_heldout_rollouts",
                "max_cost_usd",
                "max_tokens",
                "max_proposals",
            )
        }
        return {
            "iteration": self.state.counters.iteration,
            **self.state.ledger.summary(),
            "limits": limits,
        }

    # --- the run -------------------------------------------------------------------
    async def run(self) -> EngineResult:
        if not self.started:
            await self._start()
        gave_up: str | None = None
        try:
            stopped_by = await self._optimize()
        except ProposerGaveUp:
            # the run cannot go on, but what it found is real: score the seed and the
            # best so far on heldout (if the budget allows) and report them, then fail
            stopped_by, gave_up = "proposer_failures", failure_message(self.ctx)
            self.guard.reserved = Work()  # iterations still in flight will never commit
        if stopped_by is None:
            raise AssertionError("the optimization loop ended without a reason")
        if not self.stopped_externally:
            # a stop request spends nothing more: the chain waits in the checkpoint
            await finish_chain(self.ctx)
        if self.state.heldout_ids:
            await heldout(self, stopped_by)
        if gave_up is not None:
            emit_finished(self, stopped_by, error=gave_up)
            raise ProposerError(gave_up, hint=give_up_hint(self.state.counters.failure_reasons))
        return finish(self, stopped_by)

    async def _start(self) -> None:
        s, state = self.settings, self.state
        limit = self.ctx.blocked_by(self.ctx.validation_worst_case())
        if limit is not None:
            raise BudgetError(
                f"[gepa] {limit} is too small to validate the seed on {len(state.val_ids)} "
                f"examples (with {self.guard.heldout_reserve} rollouts kept for heldout)",
                hint=f"raise {limit} or use fewer validation examples",
            )
        self.started = True
        state.val_order = self.strategies.validation.draw_order(state.val_ids, self.rng)
        self.emitter.emit(
            ev.RUN_STARTED,
            {
                "settings": s.to_dict(),
                "rng_seed": self.rng_seed,
                "target_modules": list(state.target_modules),
                "train_ids": list(state.train_ids),
                "val_ids": list(state.val_ids),
                "heldout_ids": list(state.heldout_ids),
                "heldout_reserved_rollouts": self.guard.heldout_reserve,
            },
        )
        digest = content_hash(self.seed_texts)
        seed = Candidate(
            id=state.next_candidate_id(),
            texts=dict(self.seed_texts),
            content_hash=digest,
            parents=[],
            origin="seed",
            iteration=0,
        )
        register(self.ctx, seed, proposal=None)
        await validate(self.ctx, seed, 0)
        self.safe_point()

    async def _optimize(self) -> str | None:
        try:
            if self.pipeline is not None:
                return await self.pipeline.run()
            while True:
                reason = self.stop_reason()
                if reason is not None:
                    return reason
                await run_iteration(self.ctx, plan_iteration(self.ctx))
                self.safe_point()
        except BudgetStop as stop:
            return stop.limit

    def stop_reason(self, *, budget: bool = True) -> str | None:
        """Why no further iteration may start, if so; ``budget=False`` leaves out the
        check of the next iteration's worst case (overlapping iterations check it
        themselves, beside what is in flight)."""
        s, state, counters = self.settings, self.state, self.state.counters
        external = self.control.stop_requested()
        if external:
            self.stopped_externally = True
            return external
        if s.stop_at_score is not None and state.best().val_mean >= s.stop_at_score:
            return "score_threshold"
        if (
            s.stop_after_no_improvement is not None
            and counters.proposals_since_improvement >= s.stop_after_no_improvement
        ):
            return "no_improvement"
        if counters.consecutive_noops >= s.max_consecutive_noop_iterations:
            return "no_new_proposals"
        return self.ctx.blocked_by(self.ctx.iteration_worst_case()) if budget else None


def _check_inputs(
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    heldout_ids: Sequence[str],
    seed_texts: Mapping[str, str],
    modules: Sequence[str],
) -> None:
    for name, ids, required in (
        ("train", train_ids, True),
        ("validation", val_ids, True),
        ("heldout", heldout_ids, False),
    ):
        if required and not ids:
            raise ConfigError(f"the {name} set is empty", hint="give at least one example id")
        if len(set(ids)) != len(ids):
            raise ConfigError(f"the {name} example ids repeat", hint="example ids must be unique")
    if not modules:
        raise ConfigError("no target modules to optimize", hint="set [candidate] target_modules")
    absent = [m for m in modules if m not in seed_texts]
    if absent:
        raise ConfigError(
            f"no seed text for target module(s) {', '.join(absent)}",
            hint="add them to [seed_candidate] or fix [candidate] target_modules",
        )
