"""The values a task author builds: modules, results, usage, policy settings, errors.

Every check happens when the value is built, with a one-line message that names the
field, so a mistake in a rollout function becomes a clear ``failed`` rollout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gepa_cli.contracts import UPSTREAM_UNAVAILABLE


class RolloutFailed(Exception):
    """Raise in a rollout to end it as ``failed`` with this reason (not a server error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiError(Exception):
    """An HTTP error answer in the contract's shape: ``{"error": {"code", "message"}}``,
    plus any ``fields`` (plain JSON values) inside the error object."""

    status = 500

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {**self.fields, "code": self.code, "message": self.message}}


class BadRequest(ApiError):
    """The request cannot be served as asked (HTTP 400): the optimizer does not retry it."""

    status = 400


class Unavailable(ApiError):
    """A transient fault, such as an overloaded model endpoint (HTTP 503 by default, or
    429/502/504): the optimizer retries it with backoff."""

    status = 503

    def __init__(
        self,
        message: str,
        *,
        code: str = "unavailable",
        status: int | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code, message, status=status, fields=fields)


class UpstreamUnavailable(Unavailable):
    """The model endpoint (or other service) the task calls is down, times out or is
    overloaded (HTTP 502 by default, or 429/503/504). The answer says which endpoint
    and why, ``{"error": {"code": "upstream_unavailable", "message", "upstream_url",
    "cause"}}``, so the optimizer reports the model as unreachable, not the container.
    The optimizer retries it like any transient fault."""

    status = 502

    def __init__(self, url: str, cause: str, *, status: int | None = None) -> None:
        super().__init__(
            f"the model at {url} is unavailable: {cause}",
            code=UPSTREAM_UNAVAILABLE,
            status=status,
            fields={"upstream_url": url, "cause": cause},
        )
        self.url = url
        self.cause = cause


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return number


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class Module:
    """One text component of the program. ``field`` is its key in a candidate."""

    module_id: str
    field: str
    seed: str
    role: str = "system"
    objective: str | None = None
    mutable: bool = True  # False: served with its seed text, never optimized

    def __post_init__(self) -> None:
        for name in ("module_id", "field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Module.{name} must be a non-empty string, got {value!r}")
        if not isinstance(self.seed, str):
            raise ValueError(f"Module.seed of {self.module_id!r} must be a string")


@dataclass(frozen=True)
class Usage:
    """What a rollout spent. ``cost_usd=None`` means unpriced (the optimizer records the
    tokens and marks the cost unknown); 0.0 means free."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def __post_init__(self) -> None:
        _count(self.prompt_tokens, "Usage.prompt_tokens")
        _count(self.completion_tokens, "Usage.completion_tokens")
        if self.cost_usd is not None and _finite(self.cost_usd, "Usage.cost_usd") < 0:
            raise ValueError(f"Usage.cost_usd must be >= 0, got {self.cost_usd!r}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }
        if self.cost_usd is not None:
            body["cost_usd"] = float(self.cost_usd)
        return body


@dataclass(frozen=True)
class RolloutResult:
    """The outcome of one rollout. ``trace=None`` means the steps recorded with
    ``Rollout.step``; ``feedback=None`` lets the optimizer write one from the reward."""

    reward: float
    objectives: Mapping[str, float] = field(default_factory=dict)
    feedback: str | None = None
    output: Any = None
    trace: Any = None
    usage: Usage = field(default_factory=Usage)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reward", _finite(self.reward, "RolloutResult.reward"))
        if not isinstance(self.objectives, Mapping):
            raise ValueError("RolloutResult.objectives must be a mapping of name -> number")
        objectives = {
            str(name): _finite(value, f"RolloutResult.objectives[{name!r}]")
            for name, value in self.objectives.items()
        }
        object.__setattr__(self, "objectives", objectives)
        if self.feedback is not None and not isinstance(self.feedback, str):
            raise ValueError(f"RolloutResult.feedback must be a string, got {self.feedback!r}")
        if not isinstance(self.usage, Usage):
            raise ValueError("RolloutResult.usage must be a Usage(...)")
        if not isinstance(self.metadata, Mapping):
            raise ValueError("RolloutResult.metadata must be a mapping")


class PolicySettings(BaseModel):
    """The optimizer's ``[policy]`` section as the container receives it. Names of
    secrets only (``api_key_env``), never their values; unknown keys are kept."""

    model_config = ConfigDict(extra="allow")

    backend: str = "offline"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout_seconds: float = Field(default=60.0, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
