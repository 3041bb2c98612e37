"""Budget ledger, reservations and the budget preview.

Work is checked *before* it is dispatched against a reservation of what it may cost,
so no hard limit is ever passed, not even by one rollout. Rollouts are logical
evaluations (within-run memo hits are free) and cost/tokens come from recorded
usage, so a cached rerun stops exactly where the recorded run stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gepa_cli.engine.settings import EngineSettings
from gepa_cli.engine.types import Usage

ROLES = ("train", "val", "heldout")


@dataclass
class Ledger:
    """What the run has spent so far, counted from recorded usage."""

    rollouts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    proposals: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    # the largest recorded usage of one unit: reservations never assume less than this,
    # so an estimate that proves too low cannot make the run overshoot twice
    max_rollout_tokens: int = 0
    max_rollout_cost: float = 0.0
    max_proposal_tokens: int = 0
    max_proposal_cost: float = 0.0

    @property
    def total_rollouts(self) -> int:
        return sum(self.rollouts.values())

    @property
    def optimization_rollouts(self) -> int:
        return self.rollouts["train"] + self.rollouts["val"]

    def record_rollout(self, role: str, usage: Usage) -> None:
        self.rollouts[role] += 1
        self._add(usage)
        self.max_rollout_tokens = max(self.max_rollout_tokens, usage.total_tokens)
        self.max_rollout_cost = max(self.max_rollout_cost, usage.cost_usd)

    def record_proposal(self, usage: Usage) -> None:
        self.proposals += 1
        self._add(usage)
        self.max_proposal_tokens = max(self.max_proposal_tokens, usage.total_tokens)
        self.max_proposal_cost = max(self.max_proposal_cost, usage.cost_usd)

    def _add(self, usage: Usage) -> None:
        self.tokens += usage.total_tokens
        self.cost_usd += usage.cost_usd
        self.cost_known = self.cost_known and usage.cost_known

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollouts": dict(self.rollouts),
            "proposals": self.proposals,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "cost_known": self.cost_known,
            "max_rollout_tokens": self.max_rollout_tokens,
            "max_rollout_cost": self.max_rollout_cost,
            "max_proposal_tokens": self.max_proposal_tokens,
            "max_proposal_cost": self.max_proposal_cost,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ledger:
        return cls(
            rollouts={role: int(data["rollouts"][role]) for role in ROLES},
            proposals=int(data["proposals"]),
            tokens=int(data["tokens"]),
            cost_usd=float(data["cost_usd"]),
            cost_known=bool(data["cost_known"]),
            max_rollout_tokens=int(data["max_rollout_tokens"]),
            max_rollout_cost=float(data["max_rollout_cost"]),
            max_proposal_tokens=int(data["max_proposal_tokens"]),
            max_proposal_cost=float(data["max_proposal_cost"]),
        )

    def summary(self) -> dict[str, Any]:
        """The budget as events and results report it."""
        return {
            "rollouts": {**self.rollouts, "total": self.total_rollouts},
            "proposals": self.proposals,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "cost_known": self.cost_known,
        }


@dataclass(frozen=True)
class Work:
    """A unit of work about to be dispatched (or its worst case)."""

    optimization_rollouts: int = 0
    heldout_rollouts: int = 0
    proposals: int = 0

    @property
    def rollouts(self) -> int:
        return self.optimization_rollouts + self.heldout_rollouts

    def __add__(self, other: Work) -> Work:
        return Work(
            self.optimization_rollouts + other.optimization_rollouts,
            self.heldout_rollouts + other.heldout_rollouts,
            self.proposals + other.proposals,
        )

    def __sub__(self, other: Work) -> Work:
        return Work(
            self.optimization_rollouts - other.optimization_rollouts,
            self.heldout_rollouts - other.heldout_rollouts,
            self.proposals - other.proposals,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "optimization_rollouts": self.optimization_rollouts,
            "heldout_rollouts": self.heldout_rollouts,
            "proposals": self.proposals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Work:
        return cls(
            int(data["optimization_rollouts"]),
            int(data["heldout_rollouts"]),
            int(data["proposals"]),
        )


class BudgetGuard:
    """Answers "may this work start?" with None or the name of the limit it would pass."""

    def __init__(self, settings: EngineSettings, ledger: Ledger, heldout_reserve: int) -> None:
        self.settings = settings
        self.ledger = ledger
        # rollouts kept back for the heldout evaluation of seed and best
        self.heldout_reserve = heldout_reserve
        # the worst case of iterations dispatched but not yet committed (overlapping
        # iterations): work only starts when it fits beside all of them
        self.reserved = Work()

    def reserve(self, work: Work) -> None:
        self.reserved = self.reserved + work

    def release(self, work: Work) -> None:
        self.reserved = self.reserved - work

    def _per_rollout(self) -> tuple[float, float]:
        s, led = self.settings, self.ledger
        return (
            max(s.est_cost_per_rollout_usd, led.max_rollout_cost),
            float(max(s.est_tokens_per_rollout, led.max_rollout_tokens)),
        )

    def _per_proposal(self) -> tuple[float, float]:
        s, led = self.settings, self.ledger
        return (
            max(s.est_cost_per_proposal_usd, led.max_proposal_cost),
            float(max(s.est_tokens_per_proposal, led.max_proposal_tokens)),
        )

    def blocked_by(self, work: Work, elapsed_seconds: float) -> str | None:
        s, led = self.settings, self.ledger
        work = work + self.reserved
        # heldout work draws on the reserve; optimization work must leave it untouched
        reserve = 0 if work.heldout_rollouts else self.heldout_reserve
        if (
            s.max_total_rollouts is not None
            and led.total_rollouts + work.rollouts + reserve > s.max_total_rollouts
        ):
            return "max_total_rollouts"
        if (
            s.max_train_rollouts is not None
            and led.optimization_rollouts + work.optimization_rollouts > s.max_train_rollouts
        ):
            return "max_train_rollouts"
        if (
            s.max_heldout_rollouts is not None
            and led.rollouts["heldout"] + work.heldout_rollouts > s.max_heldout_rollouts
        ):
            return "max_heldout_rollouts"
        if s.max_proposals is not None and led.proposals + work.proposals > s.max_proposals:
            return "max_proposals"
        rollout_cost, rollout_tokens = self._per_rollout()
        proposal_cost, proposal_tokens = self._per_proposal()
        reserved_rollouts = work.rollouts + reserve
        if s.max_cost_usd is not None:
            need = reserved_rollouts * rollout_cost + work.proposals * proposal_cost
            if led.cost_usd + need > s.max_cost_usd + 1e-12:
                return "max_cost_usd"
        if s.max_tokens is not None:
            need_tokens = reserved_rollouts * rollout_tokens + work.proposals * proposal_tokens
            if led.tokens + need_tokens > s.max_tokens:
                return "max_tokens"
        if s.max_wall_seconds is not None:
            need_seconds = (
                reserved_rollouts * s.est_seconds_per_rollout
                + work.proposals * s.est_seconds_per_proposal
            )
            if elapsed_seconds + need_seconds > s.max_wall_seconds:
                return "max_wall_seconds"
        return None


def heldout_reserve(settings: EngineSettings, heldout_size: int) -> int:
    """Rollouts kept back for the heldout evaluation at the end: the seed and the best,
    and the frontier's members when asked for."""
    if heldout_size <= 0:
        return 0
    candidates = 2
    if settings.heldout_candidates == "frontier":
        candidates += settings.max_heldout_candidates
    wanted = candidates * heldout_size
    if settings.max_heldout_rollouts is not None:
        # only whole candidates are worth evaluating on heldout
        wanted = min(wanted, (settings.max_heldout_rollouts // heldout_size) * heldout_size)
    return wanted


def iteration_worst_case(*, minibatch: int, val_size: int, proposals: int) -> Work:
    """The most one reflective iteration can spend: parent and child on the minibatch,
    the proposer calls, and the full validation of an accepted child."""
    return Work(optimization_rollouts=2 * minibatch + val_size, proposals=proposals)


@dataclass(frozen=True)
class BudgetPreview:
    """How far a budget goes; ``proposals`` is None when no limit bounds it."""

    proposals: int | None
    limited_by: str | None
    seed_rollouts: int
    rollouts_per_proposal: int
    heldout_reserved: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "proposals": self.proposals,
            "limited_by": self.limited_by,
            "seed_rollouts": self.seed_rollouts,
            "rollouts_per_proposal": self.rollouts_per_proposal,
            "heldout_reserved": self.heldout_reserved,
        }


def preview_budget(
    settings: EngineSettings,
    *,
    val_size: int,
    train_size: int,
    heldout_size: int = 0,
    modules: int = 1,
    minibatch_size: int | None = None,
) -> BudgetPreview:
    """How many reflective iterations the budget guarantees, counted with the same
    worst-case reservations the engine makes (so the real run does at least this many
    unless a stop rule ends it). `gepa validate` warns when this is below 3."""
    minibatch = min(minibatch_size or settings.minibatch_for(val_size), max(train_size, 1))
    reserve = heldout_reserve(settings, heldout_size)
    work = iteration_worst_case(
        minibatch=minibatch,
        val_size=settings.strategy("validation").worst_case_rollouts(val_size),
        proposals=settings.strategy("component_selector").most_per_iteration(modules),
    )
    s = settings
    bounds: list[tuple[float, str]] = []

    def add(limit_name: str, available: float, per_iteration: float) -> None:
        if per_iteration > 0:
            bounds.append((max(available, 0.0) / per_iteration, limit_name))

    if s.max_total_rollouts is not None:
        add("max_total_rollouts", s.max_total_rollouts - reserve - val_size, work.rollouts)
    if s.max_train_rollouts is not None:
        add("max_train_rollouts", s.max_train_rollouts - val_size, work.rollouts)
    if s.max_proposals is not None:
        add("max_proposals", s.max_proposals, work.proposals)
    fixed_rollouts = reserve + val_size
    if s.max_cost_usd is not None:
        add(
            "max_cost_usd",
            s.max_cost_usd - fixed_rollouts * s.est_cost_per_rollout_usd,
            work.rollouts * s.est_cost_per_rollout_usd
            + work.proposals * s.est_cost_per_proposal_usd,
        )
    if s.max_tokens is not None:
        add(
            "max_tokens",
            s.max_tokens - fixed_rollouts * s.est_tokens_per_rollout,
            work.rollouts * s.est_tokens_per_rollout + work.proposals * s.est_tokens_per_proposal,
        )
    if s.max_wall_seconds is not None:
        add(
            "max_wall_seconds",
            s.max_wall_seconds - fixed_rollouts * s.est_seconds_per_rollout,
            work.rollouts * s.est_seconds_per_rollout + work.proposals * s.est_seconds_per_proposal,
        )
    if not bounds:
        return BudgetPreview(None, None, val_size, work.rollouts, reserve)
    iterations, name = min(bounds)
    proposals = math.floor(iterations + 1e-9) * work.proposals
    if name == "max_proposals" and s.max_proposals is not None:
        proposals = min(proposals, s.max_proposals)
    return BudgetPreview(proposals, name, val_size, work.rollouts, reserve)
