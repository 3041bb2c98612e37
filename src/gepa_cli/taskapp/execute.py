"""Run one rollout function within its bounds and turn what happens into a contract answer.

A `RolloutFailed`, an exception in the task's code, a wall-time overrun or a result
that is not a valid `RolloutResult` all become ``{"status": "failed", "error": ...}``:
the container keeps serving and the optimizer records the failure. Only an `ApiError`
(a bad request, or a transient fault worth retrying) leaves as an HTTP error.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from gepa_cli.taskapp.rollout import Rollout
from gepa_cli.taskapp.types import ApiError, RolloutFailed, RolloutResult

RolloutFn = Callable[[Rollout], Awaitable[RolloutResult] | RolloutResult]
log = logging.getLogger("gepa_cli.taskapp")


async def call_rollout(fn: RolloutFn, rollout: Rollout) -> Any:
    """An async function is awaited; a plain one runs in a worker thread."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    ):
        return await fn(rollout)  # type: ignore[misc]
    result = await asyncio.to_thread(functools.partial(fn, rollout))
    if inspect.isawaitable(result):
        return await result
    return result


async def execute(
    fn: RolloutFn, rollout: Rollout, rollout_id: str, max_seconds: float | None
) -> dict[str, Any]:
    """The contract body of one rollout; raises only `ApiError`."""
    try:
        if max_seconds is None:
            value = await call_rollout(fn, rollout)
        else:
            value = await asyncio.wait_for(call_rollout(fn, rollout), max_seconds)
        return completed(rollout_id, rollout, value)
    except ApiError:
        raise
    except RolloutFailed as exc:
        return failed(rollout_id, rollout, exc.reason)
    except asyncio.TimeoutError:
        return failed(
            rollout_id,
            rollout,
            f"wall time: the rollout ran past max_rollout_seconds={max_seconds:g}",
        )
    except Exception as exc:  # the task's own bug: a failed rollout, never a dead server
        log.exception("rollout %s raised", rollout_id)
        return failed(rollout_id, rollout, f"{type(exc).__name__}: {exc}")


def completed(rollout_id: str, rollout: Rollout, value: Any) -> dict[str, Any]:
    if not isinstance(value, RolloutResult):
        return failed(
            rollout_id,
            rollout,
            f"the rollout function must return a RolloutResult, got {type(value).__name__}",
        )
    reward_info: dict[str, Any] = {
        "outcome_reward": value.reward,
        "objectives": dict(value.objectives),
    }
    if value.feedback is not None:
        reward_info["feedback"] = value.feedback
    body = {
        "rollout_id": rollout_id,
        "status": "completed",
        "reward_info": reward_info,
        "output": value.output,
        "trace": value.trace if value.trace is not None else (rollout.steps or None),
        "usage": value.usage.to_json(),
        "metadata": dict(value.metadata),
    }
    problem = _not_json(body)
    if problem:
        return failed(rollout_id, rollout, f"the RolloutResult is not JSON: {problem}")
    return body


def failed(rollout_id: str, rollout: Rollout, error: str) -> dict[str, Any]:
    body: dict[str, Any] = {"rollout_id": rollout_id, "status": "failed", "error": error}
    if rollout.steps and not _not_json(rollout.steps):
        body["trace"] = rollout.steps  # what happened before it failed
    return body


def _not_json(value: Any) -> str | None:
    try:
        json.dumps(value, allow_nan=False, default=_refuse)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _refuse(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
