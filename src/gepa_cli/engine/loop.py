"""The one engine loop: select, reflect, propose, test on the minibatch, validate.

Every decision is made from the run state and the single seeded RNG, in one order,
so the same seed gives the same run, and a run restored from any checkpoint makes
the same decisions and emits the same remaining events as one never interrupted.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from gepa_cli.engine import events as ev
from gepa_cli.engine.acceptance import make_acceptance
from gepa_cli.engine.budget import BudgetGuard, Work, heldout_reserve, iteration_worst_case
from gepa_cli.engine.checkpoint import (
    SNAPSHOT_FORMAT,
    check_snapshot,
    rng_from_json,
    rng_state_to_json,
)
from gepa_cli.engine.components import make_component_selector
from gepa_cli.engine.evaluation import BudgetStop, MemoEvaluator
from gepa_cli.engine.frontier import compute_frontier
from gepa_cli.engine.merge import merge_subsample, plan_merge
from gepa_cli.engine.result import EngineResult
from gepa_cli.engine.sampler import EpochShuffledSampler
from gepa_cli.engine.selection import make_selector
from gepa_cli.engine.settings import EngineSettings
from gepa_cli.engine.state import Candidate, EngineState, MemoEntry, content_hash, proposal_id
from gepa_cli.engine.types import (
    CheckpointSink,
    Control,
    Evaluator,
    EventSink,
    ProposalRequest,
    Proposer,
    ReflectiveRecord,
    Usage,
)
from gepa_cli.engine.validation import make_validation_policy
from gepa_cli.errors import BudgetError, ConfigError, ProposerError, ResumeError

KEPT_FAILURE_REASONS = 5


class _ProposerGaveUp(Exception):
    pass


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
    ) -> None:
        modules = list(target_modules) if target_modules is not None else sorted(seed_texts)
        _check_inputs(train_ids, val_ids, heldout_ids, seed_texts, modules)
        state = EngineState(
            target_modules=modules,
            train_ids=list(train_ids),
            val_ids=list(val_ids),
            heldout_ids=list(heldout_ids),
        )
        self._setup(settings, evaluator, proposer, sink, control, checkpoints, state)
        self.rng_seed = rng_seed
        self.rng = random.Random(rng_seed)
        self.seed_texts = {str(k): str(v) for k, v in seed_texts.items()}
        self.started = False
        self.checkpoints_taken = 0

    def _setup(
        self,
        settings: EngineSettings,
        evaluator: Evaluator,
        proposer: Proposer,
        sink: EventSink,
        control: Control,
        checkpoints: CheckpointSink | None,
        state: EngineState,
    ) -> None:
        self.settings = settings
        self.proposer = proposer
        self.control = control
        self.checkpoints = checkpoints
        self.state = state
        self.emitter = ev.Emitter(sink)
        self.stopped_externally = False
        self.guard = BudgetGuard(
            settings, state.ledger, heldout_reserve(settings, len(state.heldout_ids))
        )
        self.evals = MemoEvaluator(
            evaluator, state, self.guard, self.emitter, control.elapsed_seconds
        )
        self.sampler = EpochShuffledSampler(state.train_ids, settings.minibatch_size)
        self.selector = make_selector(
            settings.candidate_selector, epsilon=settings.epsilon, top_k=settings.top_k
        )
        self.components = make_component_selector(settings.component_selector)
        self.acceptance = make_acceptance(settings.acceptance)
        self.validation = make_validation_policy(settings.validation_policy)

    # --- checkpoints -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue this run; plain JSON data."""
        return {
            "format": SNAPSHOT_FORMAT,
            "settings": self.settings.to_dict(),
            "rng_seed": self.rng_seed,
            "rng_state": rng_state_to_json(self.rng),
            "sampler": self.sampler.to_dict(),
            "state": self.state.to_dict(),
            "seed_texts": dict(self.seed_texts),
            "next_event_index": self.emitter.next_index,
            "checkpoints_taken": self.checkpoints_taken,
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
    ) -> GepaEngine:
        """Continue a run from a snapshot. ``settings`` may raise budgets; any other
        change would make a different run, so it is refused."""
        check_snapshot(snapshot)
        try:
            saved = EngineSettings.from_mapping(snapshot["settings"])
            state = EngineState.from_dict(snapshot["state"])
            rng = rng_from_json(snapshot["rng_state"])
            engine = cls.__new__(cls)
            if settings is not None:
                changed = saved.changed_search_fields(settings)
                if changed:
                    raise ResumeError(
                        f"checkpoint was written with different {', '.join(changed)}",
                        hint="resume with the original [gepa] settings (only budgets may change)",
                    )
            engine._setup(settings or saved, evaluator, proposer, sink, control, checkpoints, state)
            engine.sampler.load(snapshot["sampler"])
            engine.rng_seed = int(snapshot["rng_seed"])
            engine.rng = rng
            engine.seed_texts = {str(k): str(v) for k, v in snapshot["seed_texts"].items()}
            engine.emitter.next_index = int(snapshot["next_event_index"])
            engine.checkpoints_taken = int(snapshot["checkpoints_taken"])
            engine.started = True
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ResumeError(
                f"checkpoint does not fit this engine: {type(exc).__name__}: {exc}",
                hint="the checkpoint is damaged or from another version; start a new run",
            ) from exc
        if not engine.state.candidates:
            raise ResumeError("checkpoint holds no candidates", hint="start a new run")
        return engine

    def _safe_point(self) -> None:
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

    # --- the run -------------------------------------------------------------------
    async def run(self) -> EngineResult:
        if not self.started:
            await self._start()
        stopped_by = await self._optimize()
        if stopped_by is None:
            raise AssertionError("the optimization loop ended without a reason")
        if self.state.heldout_ids:
            await self._heldout(stopped_by)
        return self._finish(stopped_by)

    async def _start(self) -> None:
        s, state = self.settings, self.state
        seed_work = Work(
            optimization_rollouts=self.validation.worst_case_rollouts(len(state.val_ids))
        )
        limit = self.guard.blocked_by(seed_work, self.control.elapsed_seconds())
        if limit is not None:
            raise BudgetError(
                f"[gepa] {limit} is too small to validate the seed on {len(state.val_ids)} "
                f"examples (with {self.guard.heldout_reserve} rollouts kept for heldout)",
                hint=f"raise {limit} or use fewer validation examples",
            )
        self.started = True
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
        self._register(seed, proposal=None)
        await self._validate(seed)
        self._safe_point()

    async def _optimize(self) -> str | None:
        while True:
            reason = self._stop_reason()
            if reason is not None:
                return reason
            try:
                await self._iteration()
            except BudgetStop as stop:
                return stop.limit
            except _ProposerGaveUp:
                message = self._failure_message()
                self._emit_finished("proposer_failures", error=message)
                raise ProposerError(
                    message,
                    hint="check the [proposer] backend and its answers, or raise "
                    "[gepa] max_consecutive_proposer_failures",
                ) from None
            self._safe_point()

    def _stop_reason(self) -> str | None:
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
        work = iteration_worst_case(
            s,
            minibatch=self.sampler.size,
            val_size=self.validation.worst_case_rollouts(len(state.val_ids)),
            modules=len(state.target_modules),
        )
        return self.guard.blocked_by(work, self.control.elapsed_seconds())

    async def _iteration(self) -> None:
        state, merge = self.state, self.state.merge
        state.counters.iteration += 1
        if (
            self.settings.use_merge
            and merge.due > 0
            and merge.last_iteration_found_new
            and await self._try_merge()
        ):
            return
        merge.last_iteration_found_new = False
        await self._reflect()

    async def _reflect(self) -> None:
        s, state, counters = self.settings, self.state, self.state.counters
        iteration = counters.iteration
        parent = state.by_id(self.selector.select(state, s.frontier_type, self.rng))
        minibatch = self.sampler.next_minibatch(self.rng)
        modules = self.components.select(parent, state.target_modules)
        self.emitter.emit(
            ev.ITERATION_STARTED,
            {
                "iteration": iteration,
                "kind": "reflection",
                "parent_id": parent.id,
                "minibatch": list(minibatch),
                "components": list(modules),
            },
        )
        before = await self.evals.evaluate(
            parent.id,
            parent.content_hash,
            parent.texts,
            minibatch,
            role="train",
            purpose="minibatch_parent",
            iteration=iteration,
            capture_traces=True,
        )
        parent_scores = [before[e].score for e in minibatch]
        if s.skip_perfect_score and all(x >= s.perfect_score for x in parent_scores):
            counters.consecutive_noops += 1
            self.emitter.emit(
                ev.ITERATION_SKIPPED,
                {"iteration": iteration, "parent_id": parent.id, "reason": "perfect_score"},
            )
            return
        records = [self._record(e, before[e]) for e in minibatch]
        texts = dict(parent.texts)
        proposal_ids: list[str] = []
        for module in modules:
            new_text, pid = await self._propose(parent, module, records, iteration)
            if new_text is not None:
                texts[module] = new_text
                proposal_ids.append(pid)
        if not proposal_ids:
            return
        digest = content_hash(texts)
        seen = state.seen_before(digest)
        if seen is not None:
            counters.consecutive_noops += 1
            self.emitter.emit(
                ev.CANDIDATE_DUPLICATE,
                {
                    "iteration": iteration,
                    "proposal_ids": proposal_ids,
                    "parent_id": parent.id,
                    "content_hash": digest,
                    "reason": seen,
                },
            )
            return
        counters.consecutive_noops = 0
        after = await self.evals.evaluate(
            proposal_ids[0],
            digest,
            texts,
            minibatch,
            role="train",
            purpose="minibatch_child",
            iteration=iteration,
        )
        child_scores = [after[e].score for e in minibatch]
        verdict = {
            "iteration": iteration,
            "proposal_ids": proposal_ids,
            "parent_id": parent.id,
            "content_hash": digest,
            "parent_sum": sum(parent_scores),
            "child_sum": sum(child_scores),
            "rule": self.acceptance.name,
        }
        if not self.acceptance.accepts(parent_scores, child_scores):
            state.rejected_hashes.append(digest)
            self.emitter.emit(ev.CANDIDATE_REJECTED, verdict)
            return
        child = Candidate(
            id=state.next_candidate_id(),
            texts=texts,
            content_hash=digest,
            parents=[parent.id],
            origin="reflection",
            iteration=iteration,
            next_component=parent.next_component,
        )
        self.emitter.emit(ev.CANDIDATE_ACCEPTED, {**verdict, "candidate_id": child.id})
        self._register(child, proposal=proposal_ids[0])
        await self._validate(child)
        state.merge.last_iteration_found_new = True
        if s.use_merge and state.merge.tested + state.merge.due < s.max_merge_invocations:
            state.merge.due += 1

    def _record(self, example_id: str, entry: MemoEntry) -> ReflectiveRecord:
        return ReflectiveRecord(
            example_id=example_id,
            inputs=self.state.inputs.get(example_id, {}),
            output=entry.output,
            score=entry.score,
            feedback=entry.feedback,
        )

    async def _propose(
        self, parent: Candidate, module: str, records: list[ReflectiveRecord], iteration: int
    ) -> tuple[str | None, str]:
        """One proposer call; the new text, or None after recording why there is none."""
        counters, ledger = self.state.counters, self.state.ledger
        self.evals.require(Work(proposals=1))
        counters.proposals_made += 1
        counters.proposals_since_improvement += 1
        pid = proposal_id(counters.proposals_made)
        current = parent.texts[module]
        request = ProposalRequest(parent.id, module, current, dict(parent.texts), records)
        usage = Usage()
        try:
            answer = await self.proposer.propose(request)
        except ProposerError as exc:
            ledger.record_proposal(usage)
            kind, reason = "error", exc.message
        else:
            usage = answer.usage
            ledger.record_proposal(usage)
            kind, reason = "rejection", answer.rejection or ""
            text = answer.new_text
            if not reason:
                if text is None or not text.strip():
                    reason = "empty"
                elif text.strip() == current.strip():
                    reason = "unchanged"
                else:
                    counters.consecutive_failures = 0
                    counters.failure_reasons = []
                    self.emitter.emit(
                        ev.PROPOSAL_COMPLETED,
                        {
                            "proposal_id": pid,
                            "iteration": iteration,
                            "parent_id": parent.id,
                            "component": module,
                            "text": text,
                            "usage": usage.to_dict(),
                        },
                    )
                    return text, pid
        counters.consecutive_failures += 1
        counters.failure_reasons = [*counters.failure_reasons, reason][-KEPT_FAILURE_REASONS:]
        self.emitter.emit(
            ev.PROPOSAL_FAILED,
            {
                "proposal_id": pid,
                "iteration": iteration,
                "parent_id": parent.id,
                "component": module,
                "kind": kind,
                "reason": reason,
                "consecutive_failures": counters.consecutive_failures,
                "usage": usage.to_dict(),
            },
        )
        if counters.consecutive_failures >= self.settings.max_consecutive_proposer_failures:
            raise _ProposerGaveUp
        return None, pid

    def _failure_message(self) -> str:
        counters = self.state.counters
        return (
            f"the proposer failed {counters.consecutive_failures} times in a row "
            f"(latest: {'; '.join(counters.failure_reasons)})"
        )

    async def _try_merge(self) -> bool:
        """One merge attempt; False when no pair fits (the iteration reflects instead)."""
        s, state = self.settings, self.state
        iteration = state.counters.iteration
        plan = plan_merge(state, s.frontier_type, self.rng)
        if plan is None:
            return False
        state.merge.tried_triplets.append([plan.first, plan.second, plan.ancestor])
        digest = content_hash(plan.texts)
        if state.seen_before(digest) is not None:
            return False
        first, second = state.by_id(plan.first), state.by_id(plan.second)
        subsample = merge_subsample(
            first.val_scores, second.val_scores, s.merge_subsample_size, self.rng
        )
        worst = len(subsample) + self.validation.worst_case_rollouts(len(state.val_ids))
        if not subsample or self.guard.blocked_by(
            Work(optimization_rollouts=worst), self.control.elapsed_seconds()
        ):
            return False
        state.merge.due -= 1
        state.merge.tested += 1
        state.merge.last_iteration_found_new = False
        state.counters.consecutive_noops = 0
        merge_id = f"m{state.merge.tested:04d}"
        self.emitter.emit(
            ev.ITERATION_STARTED,
            {"iteration": iteration, "kind": "merge", "parent_id": plan.first},
        )
        self.emitter.emit(
            ev.MERGE_PROPOSED,
            {
                "iteration": iteration,
                "merge_id": merge_id,
                "parent_ids": [plan.first, plan.second],
                "ancestor_id": plan.ancestor,
                "content_hash": digest,
                "texts": dict(plan.texts),
                "sources": dict(plan.sources),
                "subsample": list(subsample),
            },
        )
        got = await self.evals.evaluate(
            merge_id,
            digest,
            plan.texts,
            subsample,
            role="val",
            purpose="merge_subsample",
            iteration=iteration,
        )
        parent_sums = [
            sum(first.val_scores[e] for e in subsample),
            sum(second.val_scores[e] for e in subsample),
        ]
        merge_sum = sum(got[e].score for e in subsample)
        verdict = {
            "iteration": iteration,
            "merge_id": merge_id,
            "parent_ids": [plan.first, plan.second],
            "content_hash": digest,
            "parent_sums": parent_sums,
            "merge_sum": merge_sum,
        }
        # at least as good as the better parent where the parents disagree
        if merge_sum < max(parent_sums):
            state.rejected_hashes.append(digest)
            self.emitter.emit(ev.MERGE_REJECTED, verdict)
            return True
        child = Candidate(
            id=state.next_candidate_id(),
            texts=dict(plan.texts),
            content_hash=digest,
            parents=[plan.first, plan.second],
            origin="merge",
            iteration=iteration,
            next_component=max(first.next_component, second.next_component),
        )
        self.emitter.emit(ev.MERGE_ACCEPTED, {**verdict, "candidate_id": child.id})
        self._register(child, proposal=merge_id)
        await self._validate(child)
        return True

    def _register(self, candidate: Candidate, *, proposal: str | None) -> None:
        self.state.candidates.append(candidate)
        self.emitter.emit(
            ev.CANDIDATE_REGISTERED,
            {
                "candidate_id": candidate.id,
                "content_hash": candidate.content_hash,
                "parents": list(candidate.parents),
                "origin": candidate.origin,
                "iteration": candidate.iteration,
                "proposal_id": proposal,
                "texts": dict(candidate.texts),
            },
        )

    async def _validate(self, candidate: Candidate) -> None:
        state = self.state
        best_before = state.best().val_mean if len(state.candidates) > 1 else None

        async def score(ids: Sequence[str]) -> dict[str, float]:
            got = await self.evals.evaluate(
                candidate.id,
                candidate.content_hash,
                candidate.texts,
                ids,
                role="val",
                purpose="validation",
                iteration=state.counters.iteration,
            )
            return {e: entry.score for e, entry in got.items()}

        candidate.val_scores = dict(
            sorted((await self.validation.validate(state.val_ids, score)).items())
        )
        rows = state.memo[candidate.content_hash]
        sums: dict[str, list[float]] = {}
        for eid in candidate.val_scores:
            for name, value in rows[eid].objectives.items():
                sums.setdefault(name, []).append(value)
        candidate.val_objectives = {n: sum(v) / len(v) for n, v in sorted(sums.items())}
        self.emitter.emit(
            ev.CANDIDATE_VALIDATED,
            {
                "candidate_id": candidate.id,
                "val_mean": candidate.val_mean,
                "val_count": len(candidate.val_scores),
                "objective_means": dict(candidate.val_objectives),
            },
        )
        if best_before is not None and candidate.val_mean > best_before:
            state.counters.proposals_since_improvement = 0
        frontier, best_scores = compute_frontier(state.candidates, self.settings.frontier_type)
        best = state.best()
        self.emitter.emit(
            ev.FRONTIER_UPDATED,
            {
                "frontier_type": self.settings.frontier_type,
                "frontier": frontier,
                "best_scores": best_scores,
                "best_candidate_id": best.id,
                "best_val_mean": best.val_mean,
            },
        )

    async def _heldout(self, stopped_by: str) -> None:
        state = self.state
        seed, best = state.candidates[0], state.best()
        targets = (
            [(seed, ["seed", "best"])] if best is seed else [(seed, ["seed"]), (best, ["best"])]
        )
        for candidate, roles in targets:
            if self.stopped_externally:
                # a stop request means "spend nothing more"; resume continues the run
                self.emitter.emit(
                    ev.HELDOUT_SKIPPED,
                    {"candidate_id": candidate.id, "roles": roles, "reason": stopped_by},
                )
                continue
            missing = self.evals.missing(candidate.content_hash, state.heldout_ids)
            limit = self.guard.blocked_by(
                Work(heldout_rollouts=len(missing)), self.control.elapsed_seconds()
            )
            if limit is not None:
                self.emitter.emit(
                    ev.HELDOUT_SKIPPED,
                    {"candidate_id": candidate.id, "roles": roles, "reason": limit},
                )
                continue
            got = await self.evals.evaluate(
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
            self.emitter.emit(
                ev.HELDOUT_COMPLETED,
                {"candidate_id": candidate.id, "roles": roles, "mean": mean, "count": len(got)},
            )

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

    def _emit_finished(self, stopped_by: str, *, error: str | None = None) -> dict[str, Any]:
        state = self.state
        seed, best = state.candidates[0], state.best()
        data: dict[str, Any] = {
            "stopped_by": stopped_by,
            "best_candidate_id": best.id,
            "best_val_mean": best.val_mean,
            "best_val_count": len(best.val_scores),
            "seed_val_mean": seed.val_mean,
            "seed_heldout_mean": state.heldout_means.get(seed.id),
            "best_heldout_mean": state.heldout_means.get(best.id),
            "num_candidates": len(state.candidates),
            "iterations": state.counters.iteration,
            "budget": state.ledger.summary(),
        }
        if error is not None:
            data["error"] = error
        self.emitter.emit(ev.RUN_FINISHED, data)
        return data

    def _finish(self, stopped_by: str) -> EngineResult:
        self._emit_finished(stopped_by)
        state = self.state
        seed, best = state.candidates[0], state.best()
        return EngineResult(
            best_candidate_id=best.id,
            best_texts=dict(best.texts),
            best_val_mean=best.val_mean,
            best_val_count=len(best.val_scores),
            seed_val_mean=seed.val_mean,
            seed_val_count=len(seed.val_scores),
            seed_heldout_mean=state.heldout_means.get(seed.id),
            best_heldout_mean=state.heldout_means.get(best.id),
            heldout_count=len(state.heldout_ids),
            budget=state.ledger.summary(),
            stopped_by=stopped_by,
            num_candidates=len(state.candidates),
            iterations=state.counters.iteration,
            state=state,
        )


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
