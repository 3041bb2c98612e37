"""The engine's own view of the [gepa] config section.

The engine must not depend on pydantic or the config package, so it keeps a plain
frozen dataclass with the same field names and re-checks the few rules it relies on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gepa_cli.engine.registry import KINDS, Named, build, choice_name, names
from gepa_cli.errors import ConfigError

FRONTIER_TYPES = ("instance", "objective", "hybrid")
PIPELINE_MODES = ("sync_serial", "async_pipelined")
# What becomes of a child whose parent was superseded while it was in flight: "full"
# compares it with its own parent on the same minibatch and validates it as it is, as
# the serial loop does; "rebase" (rebase.py) replays its edit on what grew from its
# parent meanwhile, so overlapping edits build on each other.
STALENESS_POLICIES = ("full", "rebase")
# Settings of overlapping iterations: written into the feed only when they apply.
PIPELINE_FIELDS = ("pipeline_mode", "max_in_flight_candidates", "staleness_policy")
# Fields added after run.started's settings were fixed: written only when they differ
# from the value that keeps the old behaviour, so older feeds stay byte-identical.
LATER_FIELDS = {
    "minibatch_schedule": "fixed",
    "heldout_candidates": "best",
    "max_heldout_candidates": 4,
}
# Which candidates the end of a run evaluates on heldout: the seed and the best, or
# also the frontier's members (strongest first, at most max_heldout_candidates more)
HELDOUT_CANDIDATES = ("best", "frontier")

# The one rule of what a resumed run may change: how far it may go (budgets, stop
# rules, how hard to try before giving up) and the estimates its reservations use.
# Every other field decides the search itself and must match the checkpoint.
RESUMABLE_FIELDS = frozenset(
    {
        "max_total_rollouts",
        "max_train_rollouts",
        "max_heldout_rollouts",
        "max_cost_usd",
        "max_tokens",
        "max_wall_seconds",
        "max_proposals",
        "est_cost_per_rollout_usd",
        "est_cost_per_proposal_usd",
        "est_tokens_per_rollout",
        "est_tokens_per_proposal",
        "est_seconds_per_rollout",
        "est_seconds_per_proposal",
        "stop_after_no_improvement",
        "stop_at_score",
        "max_consecutive_proposer_failures",
        "max_consecutive_noop_iterations",
    }
)

# Limits where 0 means "no limit" (as in the config shape this tool follows), and
# limits where 0 would stop the run before it starts, so it is refused with the way
# to say "no limit" instead.
ZERO_MEANS_UNLIMITED = ("max_cost_usd", "max_tokens", "max_wall_seconds")
ZERO_REFUSED = ("max_total_rollouts", "max_train_rollouts", "max_proposals")


def no_limit_hint(name: str) -> str:
    return f"to run without this limit, leave {name} out of [gepa]"


# A limit on cost, tokens or time can only be honoured before dispatch when the work
# about to be dispatched has an estimate: (limit, per-rollout estimate, per-proposal one).
RESERVATIONS = (
    ("max_cost_usd", "est_cost_per_rollout_usd", "est_cost_per_proposal_usd"),
    ("max_tokens", "est_tokens_per_rollout", "est_tokens_per_proposal"),
    ("max_wall_seconds", "est_seconds_per_rollout", "est_seconds_per_proposal"),
)


@dataclass(frozen=True)
class EngineSettings:
    # budgets
    max_total_rollouts: int | None = None
    max_train_rollouts: int | None = None
    max_heldout_rollouts: int | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_wall_seconds: float | None = None
    max_proposals: int | None = None
    # reservations made before work is dispatched
    est_cost_per_rollout_usd: float = 0.0
    est_cost_per_proposal_usd: float = 0.0
    est_tokens_per_rollout: int = 0
    est_tokens_per_proposal: int = 0
    est_seconds_per_rollout: float = 0.0
    est_seconds_per_proposal: float = 0.0
    # algorithm
    minibatch_size: int = 3
    candidate_selector: str | Named = "pareto"
    epsilon: float = 0.1
    top_k: int = 3
    frontier_type: str = "instance"
    acceptance: str | Named = "strict_improvement"
    component_selector: str | Named = "round_robin"
    validation_policy: str | Named = "full"
    minibatch_schedule: str | Named = "fixed"
    use_merge: bool = False
    max_merge_invocations: int = 5
    merge_subsample_size: int = 5
    skip_perfect_score: bool = True
    perfect_score: float = 1.0
    heldout_candidates: str = "best"
    max_heldout_candidates: int = 4
    # overlapping iterations (pipeline.py)
    pipeline_mode: str = "sync_serial"
    max_in_flight_candidates: int = 4
    staleness_policy: str = "rebase"
    # stop rules
    stop_after_no_improvement: int | None = None
    stop_at_score: float | None = None
    max_consecutive_proposer_failures: int = 5
    # iterations in a row that spend nothing new (duplicate proposals, perfect parents)
    max_consecutive_noop_iterations: int = 25

    def __post_init__(self) -> None:
        for name in ZERO_MEANS_UNLIMITED:
            if getattr(self, name) == 0:
                object.__setattr__(self, name, None)
        self._check()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EngineSettings:
        """Build from a mapping such as ``config.gepa.model_dump()``; non-engine keys
        (``rollout_submission_mode``, ``pipeline``, ...) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = dict(data)
        if "validation" in values:
            # the config spells it [gepa] validation
            values.setdefault("validation_policy", values.pop("validation"))
        pipeline = values.pop("pipeline", None)
        if isinstance(pipeline, Mapping):
            # the config's [gepa.pipeline] table
            values.setdefault("pipeline_mode", pipeline.get("mode", "sync_serial"))
            for key in ("max_in_flight_candidates", "staleness_policy"):
                if key in pipeline:
                    values.setdefault(key, pipeline[key])
        return cls(**{key: value for key, value in values.items() if key in names})

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for field_name in KINDS.values():
            data[field_name] = choice_name(data[field_name])
        for name, default in LATER_FIELDS.items():
            if data[name] == default:
                del data[name]
        if self.pipeline_mode == "sync_serial":
            for name in PIPELINE_FIELDS:
                del data[name]
        return data

    def strategy(self, kind: str) -> Any:
        """The strategy object this settings' choice of ``kind`` stands for."""
        return build(kind, getattr(self, KINDS[kind]), self)

    def minibatch_for(self, val_size: int) -> int:
        """The minibatch size the sampler uses (before capping at the train size)."""
        size: int = self.strategy("minibatch_schedule").size(self.minibatch_size, val_size)
        return size

    def _check(self) -> None:
        for kind, field_name in KINDS.items():
            value = getattr(self, field_name)
            allowed = names(kind)
            if isinstance(value, str):
                if value not in allowed:
                    raise ConfigError(
                        f"[gepa] {field_name} = {value!r} is not supported",
                        hint=f"use one of {', '.join(allowed)}",
                    )
            elif not isinstance(getattr(value, "name", None), str):
                raise ConfigError(
                    f"[gepa] {field_name} must be a name or a strategy with a name",
                    hint=f"use one of {', '.join(allowed)}, or give the object a name",
                )
        for name, allowed in (
            ("pipeline_mode", PIPELINE_MODES),
            ("staleness_policy", STALENESS_POLICIES),
            ("heldout_candidates", HELDOUT_CANDIDATES),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"[gepa] {name} = {getattr(self, name)!r} is not supported",
                    hint=f"use one of {', '.join(allowed)}",
                )
        if self.frontier_type not in FRONTIER_TYPES:
            raise ConfigError(
                f"[gepa] frontier_type = {self.frontier_type!r} is not supported",
                hint=f"use one of {', '.join(FRONTIER_TYPES)}",
            )
        for name in ZERO_REFUSED:
            if getattr(self, name) == 0:
                raise ConfigError(
                    f"[gepa] {name} = 0 would stop the run before it starts",
                    hint=no_limit_hint(name),
                )
        positive = (
            "minibatch_size",
            "max_in_flight_candidates",
            "top_k",
            "merge_subsample_size",
            "max_consecutive_proposer_failures",
            "max_consecutive_noop_iterations",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"[gepa] {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"[gepa] epsilon must be within [0, 1], got {self.epsilon}")
        if self.max_heldout_candidates < 0:
            raise ConfigError("[gepa] max_heldout_candidates must be >= 0")
        if self.max_merge_invocations < 0:
            raise ConfigError("[gepa] max_merge_invocations must be >= 0")
        for limit, per_rollout, per_proposal in RESERVATIONS:
            if getattr(self, limit) is None:
                continue
            for estimate in (per_rollout, per_proposal):
                if getattr(self, estimate) <= 0:
                    raise ConfigError(
                        f"[gepa] {limit} is set, so {estimate} must be > 0",
                        hint="it is the reservation made before work is dispatched",
                    )

    def changed_search_fields(self, other: EngineSettings) -> list[str]:
        """Fields outside `RESUMABLE_FIELDS` that differ: a resume cannot change these."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in RESUMABLE_FIELDS and mine.get(k) != theirs.get(k))
