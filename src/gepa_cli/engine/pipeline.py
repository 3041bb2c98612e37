"""Overlapping iterations (``[gepa.pipeline] mode = "async_pipelined"``), deterministic.

Up to K = ``max_in_flight_candidates`` iterations are in flight. Iteration i is planned
only once iteration i - K has committed, from the state as committed then (so its
parent, minibatch and every other draw never depend on timing); its work starts at
once (speculation.py); and iterations commit strictly in order, each running its
logic for real on the committed state with the work fetched for it. Decisions are
made only when planning and when committing, both in a fixed order, so the feed is
the same whatever the concurrency, the latencies or the cache.

Every in-flight iteration reserves what its work ahead of the commit may spend when
planned, so overlapping work never passes a hard limit; a validation decided at a
commit is made only if it fits beside them (docs/pipeline.md, "Budgets"). A
checkpoint is taken after each commit and lists the iterations still in flight (their
plans and views); a resumed run starts their work again and commits them as the
uninterrupted run would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gepa_cli.engine import events as ev
from gepa_cli.engine.budget import Work
from gepa_cli.engine.context import StepContext
from gepa_cli.engine.evaluation import BudgetStop, MemoEvaluator
from gepa_cli.engine.iteration import (
    IterationPlan,
    plan_from_dict,
    plan_iteration,
    run_iteration,
)
from gepa_cli.engine.rebase import POLICY as REBASE
from gepa_cli.engine.reflection import ProposerGaveUp, ReflectionPlan
from gepa_cli.engine.speculation import (
    Fetching,
    Lanes,
    NoDraws,
    Prefetch,
    Replaying,
    View,
    view_state,
    worst_of,
)
from gepa_cli.engine.state import content_hash
from gepa_cli.engine.types import EventSink, Usage
from gepa_cli.errors import GepaCliError

if TYPE_CHECKING:
    from gepa_cli.engine.loop import GepaEngine

# reasons that mean "spend nothing more": in-flight work is dropped (a resume redoes it)
EXTERNAL = "external"
# reasons after which nothing new starts, but what is in flight still commits
DRAINING = ("score_threshold", "no_improvement", "no_new_proposals")


class _Discard:
    def emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        return None


DISCARD: EventSink = _Discard()


@dataclass
class InFlight:
    plan: IterationPlan
    view: View
    reservation: Work
    prefetch: Prefetch
    task: asyncio.Task[None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "view": self.view.to_dict(),
            "reservation": self.reservation.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InFlight:
        view = View.from_dict(data["view"])
        return cls(
            plan=plan_from_dict(data["plan"]),
            view=view,
            reservation=Work.from_dict(data["reservation"]),
            prefetch=_prefetch_for(view),
        )


def _prefetch_for(view: View) -> Prefetch:
    owed = {(view.parent_hash, e) for e in view.parent_missing if view.parent_hash}
    return Prefetch(owed={(str(h), e) for h, e in owed})


class Pipeline:
    def __init__(self, engine: GepaEngine, lanes: Lanes) -> None:
        self.engine = engine
        self.lanes = lanes
        self.ctx = engine.ctx
        self.in_flight: deque[InFlight] = deque()

    # --- checkpoints -------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        return [flight.to_dict() for flight in self.in_flight]

    def restore(self, items: list[Mapping[str, Any]]) -> None:
        for item in items:
            flight = InFlight.from_dict(item)
            self.engine.guard.reserve(flight.reservation)
            self.in_flight.append(flight)

    # --- the loop ----------------------------------------------------------------
    async def run(self) -> str:
        final_room = self._final_room()
        self.engine.guard.reserve(final_room)
        try:
            for flight in self.in_flight:
                self._start(flight)
            return await self._loop()
        except BudgetStop:
            # a commit's work passed a limit (a cost or token estimate grew): what is in
            # flight will never commit. It runs to its end (cut short, what it fetched
            # would depend on timing) and what it fetched is charged, since it was spent
            await asyncio.gather(
                *(f.task for f in self.in_flight if f.task is not None), return_exceptions=True
            )
            while self.in_flight:
                flight = self.in_flight.popleft()
                self.engine.guard.release(flight.reservation)
                self._charge_leftovers(flight)
            raise
        finally:
            await self._cancel_all()
            self.engine.guard.release(final_room)

    async def _loop(self) -> str:
        limit = self.engine.settings.max_in_flight_candidates
        draining: str | None = None
        while True:
            while draining is None and len(self.in_flight) < limit:
                reason = self.engine.stop_reason(budget=False)
                if reason is not None:
                    if self.engine.stopped_externally:
                        return reason
                    draining = reason
                    break
                worst = self._reservation()
                blocked = self.ctx.blocked_by(worst)
                if blocked is not None:
                    if not self.in_flight:
                        return blocked
                    break  # commits will release reservations; try again after one
                self._dispatch(worst)
            if not self.in_flight:
                assert draining is not None
                return draining
            await self._commit(self.in_flight.popleft())
            self.engine.safe_point()
            external = self.engine.control.stop_requested()
            if external is not None:
                self.engine.stopped_externally = True
                return external

    def _final_room(self) -> Work:
        """Kept back while iterations overlap under ``rebase``: the validation of a
        child that found no room at its commit and waits as the chain's tip."""
        if self.engine.settings.staleness_policy != REBASE:
            return Work()
        return self.ctx.validation_worst_case()

    def _reservation(self) -> Work:
        """What the next iteration's work ahead of its commit may spend. Under ``rebase``
        that work stops after the minibatch test (what to validate is decided at the
        commit, which checks for room then); otherwise it validates a passing child
        ahead too. A merge trial validates ahead under either policy."""
        ctx, s, merge = self.ctx, self.engine.settings, self.ctx.state.merge
        validation = ctx.validation_worst_case()
        worst = ctx.iteration_worst_case()
        if s.staleness_policy == REBASE:
            worst = worst - validation
        if s.use_merge and merge.due > 0 and merge.last_iteration_found_new:
            trial = Work(optimization_rollouts=s.merge_subsample_size) + validation
            worst = worst_of([worst, trial])
        return worst

    def _dispatch(self, worst: Work) -> None:
        state = self.ctx.state
        view = View(candidates=len(state.candidates), rejected=len(state.rejected_hashes))
        plan = plan_iteration(self.ctx, number_proposals=True)
        if isinstance(plan, ReflectionPlan):
            parent = state.by_id(plan.parent_id)
            missing = self.engine.evals.missing(parent.content_hash, plan.minibatch)
            view = dataclasses.replace(
                view, parent_hash=parent.content_hash, parent_missing=tuple(missing)
            )
        self.engine.guard.reserve(worst)
        flight = InFlight(plan, view, worst, _prefetch_for(view))
        self.in_flight.append(flight)
        self._start(flight)

    def _start(self, flight: InFlight) -> None:
        flight.task = asyncio.ensure_future(self._work(flight))

    async def _work(self, flight: InFlight) -> None:
        """The iteration's work on its view; its answers land in ``flight.prefetch``."""
        engine = self.engine
        minibatch = flight.plan.minibatch if isinstance(flight.plan, ReflectionPlan) else []
        state = view_state(engine.state, flight.view, minibatch)
        fetching = Fetching(engine.evals.evaluator, engine.proposer, flight.prefetch, self.lanes)
        emitter = ev.Emitter(DISCARD)
        ctx = StepContext(
            settings=engine.settings,
            state=state,
            strategies=engine.strategies,
            rng=NoDraws(),
            sampler=engine.sampler,
            evals=MemoEvaluator(
                fetching,
                state,
                engine.guard,
                emitter,
                engine.control.elapsed_seconds,
                enforce_budget=False,
            ),
            proposer=fetching,
            emitter=emitter,
            guard=engine.guard,
            control=engine.control,
            speculative=True,
        )
        try:
            await run_iteration(ctx, flight.plan)
        except (ProposerGaveUp, GepaCliError):
            # the commit meets the same answers and decides what they mean
            return

    async def _commit(self, flight: InFlight) -> None:
        engine = self.engine
        assert flight.task is not None
        await flight.task
        engine.guard.release(flight.reservation)
        ctx = dataclasses.replace(
            self.ctx,
            evals=MemoEvaluator(
                engine.evals.evaluator,
                engine.state,
                engine.guard,
                engine.emitter,
                engine.control.elapsed_seconds,
                rollouts=engine.evals.rollouts,
                prefetched=flight.prefetch,
            ),
            proposer=Replaying(engine.proposer, flight.prefetch),
        )
        try:
            await run_iteration(ctx, flight.plan)
        finally:
            self._charge_leftovers(flight)

    def _charge_leftovers(self, flight: InFlight) -> None:
        """Work fetched for the iteration that its commit did not use (its child turned
        out to be a duplicate of one committed meanwhile, or was dropped at another
        stage): spent, so charged and reported."""
        state, evals = self.engine.state, self.engine.evals
        for request, results in flight.prefetch.leftovers():
            total = Usage()
            for result in results:
                state.ledger.record_rollout(request.split, result.usage)
                total = total + result.usage
            if evals.rollouts is not None:
                evals.rollouts.record_rollouts(request, results, discarded=True)
            self.engine.emitter.emit(
                ev.EVALUATION_DISCARDED,
                {
                    "iteration": flight.plan.iteration,
                    "eval_id": request.candidate_id,
                    "content_hash": content_hash(request.texts),
                    "role": request.split,
                    "example_ids": sorted(r.example_id for r in results),
                    "rollouts": len(results),
                    "usage": total.to_dict(),
                },
            )

    async def _cancel_all(self) -> None:
        tasks = [f.task for f in self.in_flight if f.task is not None and not f.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
