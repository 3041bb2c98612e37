"""Driving a synth-containers container (contract `synth_optimizers.gepa.v2`).

The synth-containers package (0.4.6) serves GEPA containers with ``/program`` (the same
prompt program as v1), ``GET /taskset`` (split sizes), ``POST /taskset/tasks``
(``{"split", "task_ids"}`` -> ``{"tasks": [...]}``, task ids ``"<split>:<seed>"`` echoed
back) and ``POST /rollouts`` (the optimizer names the ``rollout_id``; the answer carries
``status``, ``reward_info.outcome_reward`` or ``summary.reward``, ``objective_scores``,
``usage``, ``trace``; async answers ``running`` and is polled at ``/rollouts/{id}``).

Everything a v2 container answers is turned into the v1 shape here, before it is
cached or recorded, so cache entries, events and replays do not depend on the contract:
a readonly replay never needs to know which contract the recording came from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gepa_cli.runtime.container.contract import (
    PENDING_STATUSES,
    finite_number,
    require_mapping,
    require_str,
    task_fields,
    violation,
)

REWARD_PATHS = (
    "reward_info.outcome_reward",
    "reward_info.score",
    "summary.outcome_reward",
    "summary.reward",
    "reward",
)
FEEDBACK_PATHS = ("reward_info.feedback", "summary.feedback", "feedback")
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "cost_usd")


def task_ids(split: str, seeds: Sequence[int]) -> list[str]:
    return [f"{split}:{seed}" for seed in seeds]


def tasks_request(split: str, seeds: Sequence[int]) -> dict[str, Any]:
    return {"split": split, "task_ids": task_ids(split, seeds)}


def sizes_from_taskset(body: Any, route: str) -> dict[str, int]:
    """``GET /taskset``: ``{"splits": {"train": 24, ...}}`` (a count per split)."""
    data = require_mapping(body, route, "(body)")
    splits = require_mapping(data.get("splits"), route, "splits")
    sizes: dict[str, int] = {}
    for name, size in splits.items():
        if isinstance(size, Mapping):  # tolerate the v1 shape {"size": n}
            size = size.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise violation(route, f"splits.{name}", "a whole number >= 0", size)
        sizes[str(name)] = size
    return sizes


def rows_from_tasks(body: Any, split: str, seeds: Sequence[int], route: str) -> dict[str, Any]:
    """The v1 ``{"rows": [...]}`` for a ``/taskset/tasks`` answer: one task per requested
    id, in order. Each row keeps the task exactly as served under ``task``, so the
    rollout sends it back unchanged."""
    data = require_mapping(body, route, "(body)")
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        raise violation(route, "tasks", "a list", tasks)
    wanted = task_ids(split, seeds)
    if len(tasks) != len(wanted):
        raise violation(
            route,
            "tasks",
            f"{len(wanted)} tasks (one per requested task id of split '{split}')",
            f"{len(tasks)} tasks",
        )
    rows = []
    for index, (entry, seed, task_id) in enumerate(zip(tasks, seeds, wanted, strict=True)):
        where = f"tasks[{index}]"
        task = dict(require_mapping(entry, route, where))
        got = require_str(task.get("task_id"), route, f"{where}.task_id")
        if got != task_id:
            raise violation(
                route, f"{where}.task_id", f'"{task_id}" (the requested id, in order)', got
            )
        if "split" in task and task["split"] != split:
            expected = f'"{split}" (the requested split)'
            raise violation(route, f"{where}.split", expected, task["split"])
        rows.append({"example_id": task_id, "split": split, "seed": seed, "task": task})
    return {"rows": rows}


def rollout_body(v1_body: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 rollout request in v2 terms: the task by id and as served, and an id for it."""
    return {
        "rollout_id": f"gepa-{uuid.uuid4().hex[:16]}",
        "task_id": row.get("example_id"),
        "split": row.get("split"),
        "seed": row.get("seed"),
        "task": row.get("task", task_fields(row)),
        "candidate": v1_body["candidate"],
        "policy": v1_body.get("policy", {}),
        "metadata": v1_body.get("metadata", {}),
        "submission_mode": v1_body.get("submission_mode", "sync"),
    }


def normalize_rollout(body: Any, route: str) -> dict[str, Any]:
    """A terminal v2 rollout answer in the v1 shape that `parse_rollout` reads."""
    data = require_mapping(body, route, "(body)")
    status = data.get("status", "completed")
    if status in PENDING_STATUSES:
        return dict(data)  # still running: the client polls on
    out: dict[str, Any] = {"rollout_id": data.get("rollout_id"), "status": status}
    for key in ("output", "trace", "metadata"):
        if data.get(key) is not None:
            out[key] = data[key]
    usage = data.get("usage")
    if isinstance(usage, Mapping):
        out["usage"] = {k: usage[k] for k in USAGE_FIELDS if usage.get(k) is not None}
    elif usage is not None:
        raise violation(route, "usage", "a JSON object", usage)
    if status != "completed":
        error = data.get("error") or data.get("status_detail") or data.get("success_status")
        out["error"] = error if error else f"the container reported status '{status}'"
        return out
    found = _first(data, REWARD_PATHS)
    if found is not None:
        score = finite_number(found[1], route, found[0])
    else:
        scores = _objective_scores(data, route)
        if not scores:
            raise violation(
                route,
                "reward_info.outcome_reward",
                "a finite number (or summary.reward, reward, objective_scores)",
            )
        score = next(iter(scores.values()))
    reward_info: dict[str, Any] = {"outcome_reward": score}
    objectives = _objectives(data, route)
    if objectives:
        reward_info["objectives"] = objectives
    feedback = _feedback(data, route)
    if feedback is not None:
        reward_info["feedback"] = feedback
    out["reward_info"] = reward_info
    return out


def _first(data: Mapping[str, Any], paths: Sequence[str]) -> tuple[str, Any] | None:
    for path in paths:
        node: Any = data
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            return path, node
    return None


def _objective_scores(data: Mapping[str, Any], route: str) -> dict[str, float]:
    raw = data.get("objective_scores")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise violation(route, "objective_scores", "a list", raw)
    scores: dict[str, float] = {}
    for index, entry in enumerate(raw):
        item = require_mapping(entry, route, f"objective_scores[{index}]")
        name = require_str(item.get("objective"), route, f"objective_scores[{index}].objective")
        scores[name] = finite_number(item.get("value"), route, f"objective_scores[{index}].value")
    return scores


def _objectives(data: Mapping[str, Any], route: str) -> dict[str, float]:
    reward_info = data.get("reward_info")
    named = reward_info.get("objectives") if isinstance(reward_info, Mapping) else None
    if named is not None:
        return {
            str(name): finite_number(value, route, f"reward_info.objectives.{name}")
            for name, value in require_mapping(named, route, "reward_info.objectives").items()
        }
    return _objective_scores(data, route)


def _feedback(data: Mapping[str, Any], route: str) -> str | None:
    found = _first(data, FEEDBACK_PATHS)
    if found is not None:
        return require_str(found[1], route, found[0], non_empty=False)
    side_info = data.get("actionable_side_info")  # v2's evidence for reflection
    if side_info is None or side_info == {}:
        return None
    if isinstance(side_info, str):
        return side_info
    if isinstance(side_info, Mapping):
        return "\n".join(
            f"{key}: {value if isinstance(value, str) else orjson.dumps(value).decode()}"
            for key, value in side_info.items()
        )
    return orjson.dumps(side_info).decode()
