"""The TOML of an online session: the offline sections it shares, plus [upstream] and [online].

Same shape and the same one-line errors as an offline config (`gepa_cli.config`):
``[run]`` (the session id is ``run_id``), ``[candidate]``, ``[seed_candidate]``,
``[proposer]``, ``[gepa]`` (budgets only: an online session has no dataset to
sample), ``[cache]``, the new ``[upstream]`` (the model the proxy forwards to) and
``[online]`` (serving policy and learning cadence). docs/online.md describes each key.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from gepa_cli.config.load import explain, read_toml, reject_secrets, resolve_path
from gepa_cli.config.models import (
    CacheConfig,
    CandidateConfig,
    EnvName,
    PositiveFloat,
    Prices,
    ProposerConfig,
    RunConfig,
    Section,
)
from gepa_cli.engine.settings import ZERO_MEANS_UNLIMITED
from gepa_cli.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

PATH_FIELDS = ("run.output_dir", "cache.path", "proposer.prompt_template")
INJECTIONS = ("system_replace", "system_prepend", "placeholders")


class UpstreamConfig(Section):
    """The OpenAI-compatible endpoint the proxy forwards every call to."""

    base_url: str
    # the model the proxy asks for; unset: the caller's "model" is passed through
    model: str | None = None
    api_key_env: EnvName = None
    timeout_seconds: PositiveFloat = 60.0
    prices: Prices | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://api.openai.com/v1")
        return value.rstrip("/")


class OnlineBudgets(Section):
    """[gepa] of a session: what learning may spend. Serving is metered, never refused."""

    # served rollouts while learning; when reached the session completes
    max_total_rollouts: int | None = Field(default=None, ge=1)
    max_proposals: int | None = Field(default=None, ge=1)
    # tokens and cost of proposer calls (0 means no limit, as offline)
    max_tokens: int | None = Field(default=None, ge=0)
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_wall_seconds: float | None = Field(default=None, ge=0)
    est_cost_per_proposal_usd: float = Field(default=0.0, ge=0)
    est_tokens_per_proposal: int = Field(default=0, ge=0)
    max_consecutive_proposer_failures: int = Field(default=5, ge=1)

    @field_validator(*ZERO_MEANS_UNLIMITED)
    @classmethod
    def _zero_unlimited(cls, value: float | None) -> float | None:
        return None if value == 0 else value

    @model_validator(mode="after")
    def _budgets(self) -> OnlineBudgets:
        if all(
            getattr(self, name) is None
            for name in (
                "max_total_rollouts",
                "max_proposals",
                "max_tokens",
                "max_cost_usd",
                "max_wall_seconds",
            )
        ):
            raise ValueError(
                "no budget is set: give at least one of max_total_rollouts, max_proposals, "
                "max_tokens, max_cost_usd, max_wall_seconds"
            )
        for limit, estimate in (
            ("max_cost_usd", "est_cost_per_proposal_usd"),
            ("max_tokens", "est_tokens_per_proposal"),
        ):
            if getattr(self, limit) is not None and getattr(self, estimate) <= 0:
                raise ValueError(
                    f"{limit} is set, so {estimate} must be > 0 "
                    "(the reservation made before a proposer call)"
                )
        return self


class OnlineSettings(Section):
    """[online]: how candidates reach the traffic and how the session learns."""

    injection: Literal["system_replace", "system_prepend", "placeholders"] = "system_replace"
    # the module whose text goes into the system message (system_* injections)
    system_module: str | None = None
    # the share of traffic the challengers split; the incumbent (best) gets the rest
    explore_share: float = Field(default=0.3, gt=0, lt=1)
    max_challengers: int = Field(default=1, ge=1, le=8)
    # rewarded rollouts of the incumbent shown to the proposer per reflection
    reflection_minibatch: int = Field(default=10, ge=1, le=200)
    # rewards a challenger and the incumbent need before the first comparison
    min_rewards: int = Field(default=20, ge=5)
    # a challenger not shown better after this many rewards is retired
    max_rewards: int = Field(default=400, ge=10)
    # overall confidence of the sequential comparison (spent over its looks)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # promote only when the challenger's mean is better by more than this
    min_improvement: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _rewards(self) -> OnlineSettings:
        if self.max_rewards < self.min_rewards:
            raise ValueError(
                f"max_rewards ({self.max_rewards}) must be >= min_rewards ({self.min_rewards})"
            )
        return self


class OnlineConfig(Section):
    run: RunConfig = Field(default_factory=RunConfig)
    upstream: UpstreamConfig
    candidate: CandidateConfig = Field(default_factory=CandidateConfig)
    seed_candidate: dict[str, str]
    proposer: ProposerConfig
    gepa: OnlineBudgets
    cache: CacheConfig = Field(default_factory=CacheConfig)
    online: OnlineSettings = Field(default_factory=OnlineSettings)

    @model_validator(mode="after")
    def _modules(self) -> OnlineConfig:
        if not self.seed_candidate:
            raise ValueError(
                "seed_candidate is empty: give the starting text of each module, "
                'e.g. system_prompt = "You are ..."'
            )
        modules = self.target_modules
        unknown = [m for m in modules if m not in self.seed_candidate]
        if unknown:
            raise ValueError(
                f"candidate.target_modules names {unknown[0]!r}, which [seed_candidate] lacks"
            )
        online = self.online
        if online.injection != "placeholders":
            module = online.system_module
            if module is None and len(self.seed_candidate) != 1:
                raise ValueError(
                    f"online.injection = {online.injection!r} needs online.system_module when "
                    "[seed_candidate] has several modules"
                )
            if module is not None and module not in self.seed_candidate:
                raise ValueError(f"online.system_module {module!r} is not in [seed_candidate]")
        return self

    @property
    def target_modules(self) -> list[str]:
        return list(self.candidate.target_modules or self.seed_candidate)

    @property
    def system_module(self) -> str:
        return self.online.system_module or next(iter(self.seed_candidate))

    def resolved_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def online_config_from_dict(
    raw: Mapping[str, Any], *, base_dir: Path, source: str = "<config>"
) -> OnlineConfig:
    """Validate a parsed session TOML; relative paths resolve against ``base_dir``."""
    reject_secrets(dict(raw), source)
    data: dict[str, Any] = {key: value for key, value in raw.items()}
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for dotted in PATH_FIELDS:
        resolve_path(data, dotted, base_dir)
    try:
        return OnlineConfig.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, source, root=OnlineConfig) from None


def load_online_config(path: str | Path) -> OnlineConfig:
    path = Path(path)
    return online_config_from_dict(
        read_toml(path), base_dir=path.resolve().parent, source=str(path)
    )


def online_config_from_toml(
    text: str, *, base_dir: Path, source: str = "config_toml"
) -> OnlineConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}", hint="fix the syntax") from None
    return online_config_from_dict(raw, base_dir=base_dir, source=source)


__all__ = [
    "INJECTIONS",
    "OnlineBudgets",
    "OnlineConfig",
    "OnlineSettings",
    "UpstreamConfig",
    "load_online_config",
    "online_config_from_dict",
    "online_config_from_toml",
]
