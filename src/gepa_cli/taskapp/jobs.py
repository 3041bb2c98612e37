"""Async rollouts: submitted with 202, polled by id, terminated on request."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from gepa_cli.taskapp.types import ApiError, BadRequest

MAX_KEPT_JOBS = 10_000  # finished rollouts kept for polling, oldest dropped first
ACTIVE = ("queued", "running")


class Jobs:
    def __init__(self, max_kept: int = MAX_KEPT_JOBS) -> None:
        self.max_kept = max_kept
        self._states: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, rollout_id: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._states[rollout_id] = {"rollout_id": rollout_id, "status": "queued"}
        self._forget_old()
        self._tasks[rollout_id] = asyncio.create_task(self._run(rollout_id, work))

    def mark_running(self, rollout_id: str) -> None:
        state = self._states.get(rollout_id)
        if state is not None and state["status"] == "queued":
            state["status"] = "running"

    async def _run(self, rollout_id: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        try:
            result = await work()
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            # the error object keeps its code (and an upstream's URL and cause), so a
            # polled failure says as much as a synchronous error answer
            result = {"rollout_id": rollout_id, "status": "failed", "error": exc.body()["error"]}
        except Exception as exc:  # a job must end in a terminal state, whatever fails
            result = {"rollout_id": rollout_id, "status": "failed", "error": repr(exc)}
        finally:
            self._tasks.pop(rollout_id, None)
        if self._states.get(rollout_id, {}).get("status") in ACTIVE:
            self._states[rollout_id] = result

    def get(self, rollout_id: str) -> dict[str, Any]:
        if rollout_id not in self._states:
            raise ApiError("unknown_rollout", f"no rollout {rollout_id!r}", status=404)
        return self._states[rollout_id]

    def terminate(self, rollout_id: str, reason: str) -> dict[str, Any]:
        current = self.get(rollout_id)
        if current["status"] in ACTIVE:
            self._states[rollout_id] = {
                "rollout_id": rollout_id,
                "status": "cancelled",
                "reason": reason,
            }
            task = self._tasks.pop(rollout_id, None)
            if task is not None:
                task.cancel()
        return self._states[rollout_id]

    async def cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _forget_old(self) -> None:
        while len(self._states) > self.max_kept:
            oldest = next(iter(self._states))
            if oldest in self._tasks:
                break  # never drop a rollout still running
            self._states.pop(oldest)


def reason_of(body: Any) -> str:
    if body is None:
        return "terminated by the caller"
    if not isinstance(body, dict):
        raise BadRequest("invalid_request", "the terminate body must be a JSON object")
    reason = body.get("reason", "terminated by the caller")
    return str(reason)
