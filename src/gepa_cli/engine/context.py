"""The narrow view every engine step works through.

A step (reflection, merge, admission, the end of a run) reads and advances the run
state, draws from the one RNG, evaluates through the memo and reports through the
emitter; it sees nothing else of the engine, so steps can be written, tested and
scheduled on their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gepa_cli.engine.acceptance import AcceptanceRule
from gepa_cli.engine.budget import BudgetGuard, Work, iteration_worst_case
from gepa_cli.engine.components import ComponentSelector
from gepa_cli.engine.evaluation import MemoEvaluator
from gepa_cli.engine.events import Emitter
from gepa_cli.engine.sampler import EpochShuffledSampler
from gepa_cli.engine.schedule import MinibatchSchedule
from gepa_cli.engine.selection import CandidateSelector
from gepa_cli.engine.settings import EngineSettings
from gepa_cli.engine.state import EngineState
from gepa_cli.engine.types import Control, Proposer
from gepa_cli.engine.validation import ValidationPolicy


@dataclass(frozen=True)
class Strategies:
    """The run's choice of each strategy kind (engine/registry.py)."""

    selector: CandidateSelector
    acceptance: AcceptanceRule
    components: ComponentSelector
    validation: ValidationPolicy
    schedule: MinibatchSchedule

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Strategies:
        return cls(
            selector=settings.strategy("candidate_selector"),
            acceptance=settings.strategy("acceptance"),
            components=settings.strategy("component_selector"),
            validation=settings.strategy("validation"),
            schedule=settings.strategy("minibatch_schedule"),
        )


@dataclass
class StepContext:
    settings: EngineSettings
    state: EngineState
    strategies: Strategies
    rng: random.Random
    sampler: EpochShuffledSampler
    evals: MemoEvaluator
    proposer: Proposer
    emitter: Emitter
    guard: BudgetGuard
    control: Control
    # work run ahead of its commit (pipeline.py): it must not decide what the commit
    # will decide on the committed state
    speculative: bool = False

    def validation_worst_case(self) -> Work:
        """The most one validation may spend (the validation policy's worst case)."""
        size = self.strategies.validation.worst_case_rollouts(len(self.state.val_ids))
        return Work(optimization_rollouts=size)

    def iteration_worst_case(self) -> Work:
        """What the next reflective iteration may spend at most."""
        state = self.state
        return iteration_worst_case(
            minibatch=self.sampler.size,
            val_size=self.validation_worst_case().optimization_rollouts,
            proposals=self.strategies.components.most_per_iteration(len(state.target_modules)),
        )

    def blocked_by(self, work: Work) -> str | None:
        return self.guard.blocked_by(work, self.control.elapsed_seconds())
