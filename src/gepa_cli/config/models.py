"""Pydantic models for every section of the TOML config (design.md section 2).

The models only describe shape and local rules; `load.py` turns pydantic's errors
into one-line `ConfigError`s and applies path resolution and environment overrides.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gepa_cli.contracts import AUTO, CONTRACTS
from gepa_cli.engine.registry import names as strategy_names
from gepa_cli.engine.settings import RESERVATIONS, ZERO_MEANS_UNLIMITED, ZERO_REFUSED, no_limit_hint

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_SEEDS = 1_000_000
APP_OBJECT = "app_object"  # validation context: the container app is given as an object


def parse_seeds(value: Any) -> Any:
    """Accept a list of non-negative ints or a ``"start:stop"`` range string."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", value)
        if not match:
            raise ValueError(f'expected a list of seeds or a "start:stop" range, got {value!r}')
        start, stop = int(match.group(1)), int(match.group(2))
        if stop <= start:
            raise ValueError(f"range {value!r} is empty: stop must be greater than start")
        if stop - start > MAX_SEEDS:
            raise ValueError(f"range {value!r} has more than {MAX_SEEDS} seeds")
        return list(range(start, stop))
    if isinstance(value, list):
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise ValueError(f"seeds must be whole numbers, got {item!r}")
            if item < 0:
                raise ValueError(f"seeds must be >= 0, got {item}")
        if len(set(value)) != len(value):
            raise ValueError("seeds must not repeat")
        return value
    raise ValueError(f'expected a list of seeds or a "start:stop" range, got {value!r}')


Seeds = Annotated[list[int], BeforeValidator(parse_seeds)]


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; give the variable's name, "
            "not its value"
        )
    return value


EnvName = Annotated[str | None, BeforeValidator(_check_env_name)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RunConfig(Section):
    run_id: str | None = None
    output_dir: Path = Path("runs")
    seed: int = Field(default=0, ge=0)

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None and not RUN_ID.match(value):
            raise ValueError(
                f"{value!r} is not a valid run id: use letters, digits, '.', '_' or '-' "
                "(at most 128 characters, starting with a letter or digit)"
            )
        return value


class ContainerConfig(Section):
    url: str | None = None
    app: str | None = None
    factory: bool = False  # app names a function that builds the app (as uvicorn --factory)
    command: list[str] | None = None
    # which contract the container speaks; "auto" reads it from /metadata
    contract: str = AUTO
    startup_timeout_seconds: PositiveFloat = 30.0
    request_timeout_seconds: PositiveFloat = 60.0
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    api_key_env: EnvName = None
    retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_seconds: float = Field(default=0.2, ge=0)
    poll_interval_seconds: PositiveFloat = 0.05
    max_consecutive_failures: int = Field(default=25, ge=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:8000")
        return value.rstrip("/") if value else value

    @field_validator("app")
    @classmethod
    def _app(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.]+:[\w.]+", value):
            raise ValueError(f'{value!r} is not of the form "module:attribute"')
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0].strip()):
            raise ValueError("command must name a program, e.g. ['python', 'serve.py']")
        return value

    @field_validator("contract")
    @classmethod
    def _contract(cls, value: str) -> str:
        if value not in (AUTO, *CONTRACTS):
            choices = ", ".join(repr(name) for name in (AUTO, *CONTRACTS))
            raise ValueError(f"{value!r} is not a known contract; use one of {choices}")
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self, info: ValidationInfo) -> ContainerConfig:
        given = [name for name in ("url", "app", "command") if getattr(self, name) is not None]
        if info.context and info.context.get(APP_OBJECT):
            # the app comes as an object from Python (GepaRun(..., app=...))
            if given:
                raise ValueError(
                    f"an app object is given from Python, so {given[0]} must not be set too"
                )
        elif len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"exactly one of url, app, command must be set (found: {found})")
        if self.factory and self.app is None:
            raise ValueError('factory = true needs app = "module:function" (the factory)')
        return self


class DatasetConfig(Section):
    train_split: str = "train"
    val_split: str | None = None
    heldout_split: str | None = None
    train_seeds: Seeds
    val_seeds: Seeds | None = None
    heldout_seeds: Seeds = Field(default_factory=list)

    @model_validator(mode="after")
    def _splits(self) -> DatasetConfig:
        if not self.train_seeds:
            raise ValueError("train_seeds must not be empty")
        if self.heldout_seeds and self.heldout_split is None:
            raise ValueError("heldout_seeds needs heldout_split (the split to draw them from)")
        return self

    @property
    def resolved_val_split(self) -> str:
        return self.val_split or self.train_split

    @property
    def resolved_val_seeds(self) -> list[int]:
        return list(self.val_seeds) if self.val_seeds is not None else list(self.train_seeds)


class CandidateConfig(Section):
    target_modules: list[str] | None = None

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("target_modules must not be empty (omit it to use all)")
            if len(set(value)) != len(value):
                raise ValueError("target_modules must not repeat")
        return value


class Prices(Section):
    input_per_million_usd: float = Field(ge=0)
    output_per_million_usd: float = Field(ge=0)


class PolicyConfig(Section):
    """Passed to the container with every rollout (names of secrets only). ``prices``
    stays with the optimizer: it prices the tokens a rollout reports without a cost."""

    backend: str = "offline"
    model: str | None = None
    base_url: str | None = None
    api_key_env: EnvName = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    # seconds the container may wait for one call to its model (None: the container's own)
    timeout_seconds: PositiveFloat | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    prices: Prices | None = None


class ProposerConfig(Section):
    backend: Literal["openai_chat", "command"] = "command"
    model: str | None = None
    base_url: str | None = None
    api_key_env: EnvName = None
    temperature: float = Field(default=1.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout_seconds: PositiveFloat = 120.0
    retries: int = Field(default=3, ge=0, le=20)
    command: list[str] | None = None
    input: Literal["text", "json"] = "text"
    prompt_template: Path | None = None
    prices: Prices | None = None

    @model_validator(mode="after")
    def _backend_fields(self) -> ProposerConfig:
        if self.backend == "command" and not self.command:
            raise ValueError("backend 'command' needs command = [...] (the program to run)")
        if self.backend == "openai_chat" and not self.model:
            raise ValueError("backend 'openai_chat' needs model (e.g. 'gpt-4.1-mini')")
        return self


class PipelineWorkers(Section):
    """How much overlapping iterations may have under way at once (timing only: these
    never change a decision, so they may change on resume)."""

    propose: int | None = Field(default=None, ge=1)  # proposer calls (default: K)
    rollout: int | None = Field(default=None, ge=1)  # rollouts (default: max_concurrency)
    evaluate: int | None = Field(default=None, ge=1)  # evaluation batches (default: no cap)


class PipelineConfig(Section):
    # "sync_serial": one iteration at a time. "async_pipelined": up to
    # max_in_flight_candidates iterations overlap, deterministically (docs/pipeline.md).
    mode: Literal["sync_serial", "async_pipelined"] = "sync_serial"
    max_in_flight_candidates: int = Field(default=4, ge=1, le=256)
    staleness_policy: Literal["full", "rebase"] = "rebase"
    workers: PipelineWorkers = Field(default_factory=PipelineWorkers)


class GepaSettings(Section):
    # budgets; 0 means "no limit" for cost, tokens and wall time, and is refused for
    # rollouts and proposals (where it would stop the run before it starts)
    max_total_rollouts: int | None = Field(default=None, ge=0)
    max_train_rollouts: int | None = Field(default=None, ge=0)
    max_heldout_rollouts: int | None = Field(default=None, ge=0)
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_wall_seconds: float | None = Field(default=None, ge=0)
    max_proposals: int | None = Field(default=None, ge=0)
    # reservations: what one unit of work is assumed to cost before it is dispatched
    est_cost_per_rollout_usd: float = Field(default=0.0, ge=0)
    est_cost_per_proposal_usd: float = Field(default=0.0, ge=0)
    est_tokens_per_rollout: int = Field(default=0, ge=0)
    est_tokens_per_proposal: int = Field(default=0, ge=0)
    est_seconds_per_rollout: float = Field(default=0.0, ge=0)
    est_seconds_per_proposal: float = Field(default=0.0, ge=0)
    # algorithm
    minibatch_size: int = Field(default=3, ge=1)
    # strategy choices: the names registered in the engine (engine/registry.py)
    candidate_selector: str = "pareto"
    epsilon: float = Field(default=0.1, ge=0, le=1)
    top_k: int = Field(default=3, ge=1)
    frontier_type: Literal["instance", "objective", "hybrid"] = "instance"
    acceptance: str = "strict_improvement"
    component_selector: str = "round_robin"
    # how a child that passed its minibatch test is validated: "adaptive" lets such
    # children form a chain validated at its tip, the chain's length following whether
    # tips beat their roots (engine/chain.py); "full" validates each one on the whole
    # set; "racing" in stages that drop a child as soon as it is clearly worse
    validation: str = "adaptive"
    # "validation_share": the minibatch grows so parent + child minibatch rollouts are a
    # fifth of one validation, never below minibatch_size
    minibatch_schedule: str = "validation_share"
    use_merge: bool = False
    max_merge_invocations: int = Field(default=5, ge=0)
    merge_subsample_size: int = Field(default=5, ge=1)
    skip_perfect_score: bool = True
    perfect_score: float = 1.0
    # which candidates the end of a run scores on heldout: the seed and the best, or
    # also up to max_heldout_candidates members of the frontier (strongest first)
    heldout_candidates: Literal["best", "frontier"] = "best"
    max_heldout_candidates: int = Field(default=4, ge=0)
    # stop rules
    stop_after_no_improvement: int | None = Field(default=None, ge=1)
    stop_at_score: float | None = None
    max_consecutive_proposer_failures: int = Field(default=5, ge=1)
    rollout_submission_mode: Literal["sync", "async"] = "sync"
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    @field_validator(
        "candidate_selector", "acceptance", "component_selector", "validation", "minibatch_schedule"
    )
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        allowed = strategy_names(str(info.field_name))
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, allowed))}")
        return value

    @field_validator(*ZERO_REFUSED)
    @classmethod
    def _zero_refused(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value == 0:
            raise ValueError(
                f"0 would stop the run before it starts; {no_limit_hint(str(info.field_name))}"
            )
        return value

    @field_validator(*ZERO_MEANS_UNLIMITED)
    @classmethod
    def _zero_unlimited(cls, value: float | None) -> float | None:
        return None if value == 0 else value

    @model_validator(mode="after")
    def _budgets(self) -> GepaSettings:
        bounded = any(
            value is not None
            for value in (
                self.max_total_rollouts,
                self.max_train_rollouts,
                self.max_cost_usd,
                self.max_tokens,
                self.max_wall_seconds,
                self.max_proposals,
                self.stop_after_no_improvement,
            )
        )
        if not bounded:
            raise ValueError(
                "no budget is set: give at least one of max_total_rollouts, max_train_rollouts, "
                "max_cost_usd, max_tokens, max_wall_seconds, max_proposals, "
                "stop_after_no_improvement (0 for cost, tokens or wall time means no limit)"
            )
        for limit, per_rollout, per_proposal in RESERVATIONS:
            if getattr(self, limit) is None:
                continue
            for estimate in (per_rollout, per_proposal):
                if getattr(self, estimate) <= 0:
                    raise ValueError(
                        f"{limit} is set, so {estimate} must be > 0 "
                        "(the reservation made before work is dispatched)"
                    )
        return self


class CacheConfig(Section):
    mode: Literal["off", "readwrite", "readonly"] = "off"
    path: Path = Path(".gepa-cache")
    namespace: str = "default"

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not NAMESPACE.match(value):
            raise ValueError(
                f"{value!r} is not a valid namespace: use letters, digits, '.', '_' or '-'"
            )
        return value


class GepaConfig(Section):
    run: RunConfig = Field(default_factory=RunConfig)
    container: ContainerConfig
    dataset: DatasetConfig
    candidate: CandidateConfig = Field(default_factory=CandidateConfig)
    seed_candidate: dict[str, str] = Field(default_factory=dict)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    proposer: ProposerConfig
    gepa: GepaSettings
    cache: CacheConfig = Field(default_factory=CacheConfig)

    def resolved_dict(self) -> dict[str, Any]:
        """The validated config as plain JSON data (paths as strings)."""
        return self.model_dump(mode="json")
