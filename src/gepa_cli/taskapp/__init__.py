"""Write a container in plain Python: ``from gepa_cli.taskapp import TaskApp, ...``.

Declare the program (`Module`), the dataset (split sizes and a row function) and one
rollout function; `TaskApp` serves them as contract ``gepa_cli.container.v1``. See
docs/containers.md. This package imports nothing from the optimizer (engine, runner,
front ends), so a container never depends on the optimizer's internals.
"""

from gepa_cli.contracts import CONTAINER_V1 as CONTRACT_VERSION
from gepa_cli.taskapp.app import TaskApp
from gepa_cli.taskapp.rollout import Rollout
from gepa_cli.taskapp.types import (
    ApiError,
    BadRequest,
    Module,
    PolicySettings,
    RolloutFailed,
    RolloutResult,
    Unavailable,
    UpstreamUnavailable,
    Usage,
)

__all__ = [
    "CONTRACT_VERSION",
    "ApiError",
    "BadRequest",
    "Module",
    "PolicySettings",
    "Rollout",
    "RolloutFailed",
    "RolloutResult",
    "TaskApp",
    "Unavailable",
    "UpstreamUnavailable",
    "Usage",
]
