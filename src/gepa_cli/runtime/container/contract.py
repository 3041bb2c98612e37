"""Contract v1 (`gepa_cli.container.v1`): the shapes the container must answer with.

Pure functions over decoded JSON. Each violation is a `ContainerContractError` that
names the route, the field, what was expected and what came, so a container author can
fix it from the one line. `/metadata` also names the contract a container speaks: v1,
or synth-containers' `synth_optimizers.gepa.v2`, whose answers `synth_v2` turns into
the v1 shapes below before anything is cached or recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gepa_cli.contracts import AUTO, CONTAINER_V1, CONTRACTS, POLICY_CHECK_KEY, SYNTH_GEPA_V2
from gepa_cli.engine.types import Usage
from gepa_cli.errors import ContainerContractError

# cache keys name this version whatever contract the container speaks: they describe the
# logical request, and v2 answers are recorded in v1 shapes, so recordings stay neutral
CONTRACT_VERSION = CONTAINER_V1
TERMINAL_STATUSES = frozenset({"completed", "failed", "terminated", "cancelled", "error"})
PENDING_STATUSES = frozenset({"queued", "pending", "running", "in_progress"})
# fields of a dataset row that identify it rather than describe the task
ROW_IDENTITY_FIELDS = ("example_id", "split", "seed")


def violation(
    route: str, field_name: str, expected: str, got: Any = None
) -> ContainerContractError:
    shown = _show(got)
    return ContainerContractError(
        f"container contract violation at {route}: field '{field_name}' must be {expected}"
        + (f", got {shown}" if shown else ""),
        hint="fix the container to answer as container-contract.md says",
        route=route,
        field=field_name,
        expected=expected,
        got=shown or "nothing",
    )


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def require_mapping(value: Any, route: str, field_name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise violation(route, field_name, "a JSON object", value)
    return value


def require_str(value: Any, route: str, field_name: str, *, non_empty: bool = True) -> str:
    if not isinstance(value, str) or (non_empty and not value.strip()):
        raise violation(route, field_name, "a non-empty string" if non_empty else "a string", value)
    return value


def finite_number(value: Any, route: str, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise violation(route, field_name, "a finite number", value)
    number = float(value)
    if not math.isfinite(number):
        raise violation(route, field_name, "a finite number", value)
    return number


@dataclass(frozen=True)
class Routes:
    """Where a container serves each part of its contract (v2: taskset routes as dataset)."""

    program: str = "/program"
    dataset: str = "/dataset"
    dataset_rows: str = "/dataset/rows"
    rollout: str = "/rollout"
    contract: str = CONTAINER_V1
    # optional: asks the container whether its policy's model answers (None: not served)
    policy_check: str | None = None


# contract -> (route key in /metadata, its default or None when required) per Routes field
ROUTE_KEYS: dict[str, dict[str, tuple[str, str | None]]] = {
    CONTAINER_V1: {
        "program": ("program_route", None),
        "dataset": ("dataset_route", "/dataset"),
        "dataset_rows": ("dataset_rows_route", None),
        "rollout": ("rollout_route", None),
    },
    SYNTH_GEPA_V2: {
        "program": ("program_route", None),
        "dataset": ("taskset_route", None),
        "dataset_rows": ("taskset_tasks_route", None),
        "rollout": ("rollout_route", None),
    },
}
METADATA_PATH = "metadata.optimizer_contracts.gepa"


def parse_health(body: Any) -> str | None:
    """Checks the status; returns the contract_version it names (checked once the
    contract is known: synth-containers name their own release there)."""
    route = "GET /health"
    data = require_mapping(body, route, "(body)")
    if data.get("status") != "ok":
        raise violation(route, "status", '"ok"', data.get("status"))
    version = data.get("contract_version")
    return None if version is None else str(version)


def check_health_version(version: str | None, contract: str) -> None:
    if contract == CONTAINER_V1 and version is not None and version != CONTAINER_V1:
        raise violation("GET /health", "contract_version", f'"{CONTAINER_V1}"', version)


def parse_metadata(body: Any, expected: str = AUTO) -> tuple[dict[str, Any], Routes]:
    """The contract the container names (it must be ``expected`` unless that is auto)
    and its routes."""
    route = "GET /metadata"
    data = require_mapping(body, route, "(body)")
    path = METADATA_PATH
    node: Any = data
    for depth, key in enumerate(path.split(".")):
        node = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            where = ".".join(path.split(".")[: depth + 1])
            raise violation(route, where, "a JSON object", node)
    version = node.get("version")
    allowed = CONTRACTS if expected == AUTO else (expected,)
    if version not in allowed:
        wanted = " or ".join(f'"{name}"' for name in allowed)
        if expected != AUTO and version in CONTRACTS:
            wanted += " (set [container] contract to match, or to auto)"
        raise violation(route, f"{path}.version", wanted, version)
    found: dict[str, str] = {}
    for name, (key, default) in ROUTE_KEYS[str(version)].items():
        value = node.get(key, default)
        if not isinstance(value, str) or not value.startswith("/"):
            raise violation(route, f"{path}.{key}", 'a route starting with "/"', value)
        found[name] = value.rstrip("/") or "/"
    policy_check = node.get(POLICY_CHECK_KEY) if version == CONTAINER_V1 else None
    if policy_check is not None:
        if not isinstance(policy_check, str) or not policy_check.startswith("/"):
            raise violation(
                route, f"{path}.{POLICY_CHECK_KEY}", 'a route starting with "/"', policy_check
            )
        found["policy_check"] = policy_check.rstrip("/") or "/"
    return dict(data), Routes(**found, contract=str(version))


def parse_dataset(body: Any, route: str = "GET /dataset") -> dict[str, int]:
    """``{"splits": {"train": {"size": 100}, ...}}`` -> split sizes."""
    data = require_mapping(body, route, "(body)")
    splits = require_mapping(data.get("splits"), route, "splits")
    sizes: dict[str, int] = {}
    for name, entry in splits.items():
        size = require_mapping(entry, route, f"splits.{name}").get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise violation(route, f"splits.{name}.size", "a whole number >= 0", size)
        sizes[str(name)] = size
    return sizes


@dataclass(frozen=True)
class Program:
    program_id: str
    target_modules: tuple[str, ...]  # candidate_field names, in the program's order
    module_ids: Mapping[str, str]  # module_id -> candidate_field of each target module
    seed_candidate: Mapping[str, str]
    raw: Mapping[str, Any] = field(default_factory=dict)


def parse_program(body: Any, route: str = "GET /program") -> Program:
    data = require_mapping(body, route, "(body)")
    program_id = require_str(data.get("program_id"), route, "program_id")
    targets = data.get("target_modules")
    if not isinstance(targets, list) or not targets:
        raise violation(route, "target_modules", "a non-empty list", targets)
    fields: list[str] = []
    module_ids: dict[str, str] = {}
    for index, entry in enumerate(targets):
        where = f"target_modules[{index}]"
        item = require_mapping(entry, route, where)
        candidate_field = require_str(
            item.get("candidate_field"), route, f"{where}.candidate_field"
        )
        if candidate_field in fields:
            raise violation(route, f"{where}.candidate_field", "unique", candidate_field)
        fields.append(candidate_field)
        module_id = item.get("module_id")
        if isinstance(module_id, str) and module_id:
            module_ids[module_id] = candidate_field
    seeds_raw = data.get("seed_candidate", {})
    seeds = require_mapping(seeds_raw if seeds_raw is not None else {}, route, "seed_candidate")
    for name, text in seeds.items():
        require_str(text, route, f"seed_candidate.{name}", non_empty=False)
    return Program(program_id, tuple(fields), module_ids, dict(seeds), dict(data))


def resolve_targets(
    program: Program,
    configured: Sequence[str] | None,
    config_seeds: Mapping[str, str],
    route: str = "GET /program",
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The target modules (candidate fields) to optimize and a seed text for each.

    A configured name may be a candidate field or a module id of a target module.
    """
    if configured is None:
        targets = program.target_modules
    else:
        resolved: list[str] = []
        for name in configured:
            if name in program.target_modules:
                resolved.append(name)
            elif name in program.module_ids:
                resolved.append(program.module_ids[name])
            else:
                raise violation(
                    route,
                    "target_modules",
                    f"to contain the configured module '{name}' "
                    f"(the program offers: {', '.join(program.target_modules)})",
                )
        targets = tuple(resolved)
    seeds: dict[str, str] = {}
    for name in targets:
        text = config_seeds.get(name, program.seed_candidate.get(name))
        if text is None or not text.strip():
            raise violation(
                route,
                f"seed_candidate.{name}",
                "a non-empty seed text (or set it in the config's [seed_candidate])",
                text,
            )
        seeds[name] = text
    return targets, seeds


def parse_rows(body: Any, split: str, seeds: Sequence[int], route: str) -> list[dict[str, Any]]:
    """Exactly one row per requested seed, in order, each with a unique example_id."""
    data = require_mapping(body, route, "(body)")
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise violation(route, "rows", "a list", rows)
    if len(rows) != len(seeds):
        raise violation(
            route,
            "rows",
            f"{len(seeds)} rows (one per requested seed of split '{split}')",
            f"{len(rows)} rows",
        )
    seen: set[str] = set()
    parsed: list[dict[str, Any]] = []
    for index, (entry, seed) in enumerate(zip(rows, seeds, strict=True)):
        where = f"rows[{index}]"
        row = dict(require_mapping(entry, route, where))
        example_id = require_str(row.get("example_id"), route, f"{where}.example_id")
        if example_id in seen:
            raise violation(route, f"{where}.example_id", "unique within the split", example_id)
        seen.add(example_id)
        if "seed" in row and row["seed"] != seed:
            raise violation(
                route, f"{where}.seed", f"{seed} (the requested seed, in order)", row["seed"]
            )
        if "split" in row and row["split"] != split:
            raise violation(
                route, f"{where}.split", f'"{split}" (the requested split)', row["split"]
            )
        parsed.append(row)
    return parsed


def task_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in ROW_IDENTITY_FIELDS}


@dataclass(frozen=True)
class RolloutOutcome:
    status: str  # "completed" or "failed"
    score: float
    feedback: str
    output: Any
    objectives: Mapping[str, float]
    usage: Usage
    trace: Any
    rollout_id: str | None
    error: str | None


def _first(data: Mapping[str, Any], paths: Sequence[str]) -> tuple[str, Any] | None:
    for path in paths:
        node: Any = data
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            return path, node
    return None


REWARD_PATHS = (
    "reward_info.outcome_reward",
    "reward_info.score",
    "summary.outcome_reward",
    "reward",
)
FEEDBACK_PATHS = ("reward_info.feedback", "summary.feedback", "feedback")


def parse_rollout(body: Any, route: str = "POST /rollout") -> RolloutOutcome:
    data = require_mapping(body, route, "(body)")
    status = data.get("status", "completed")
    rollout_id = data.get("rollout_id")
    rollout_id = str(rollout_id) if rollout_id is not None else None
    if status != "completed":
        if status in TERMINAL_STATUSES:
            error = data.get("error")
            if isinstance(error, Mapping):
                error = error.get("message") or error.get("code")
            message = str(error) if error else f"the container reported status '{status}'"
            return RolloutOutcome(
                "failed",
                0.0,
                "",
                data.get("output"),
                {},
                _usage(data, route),
                data.get("trace"),
                rollout_id,
                message,
            )
        raise violation(route, "status", '"completed" or "failed"', status)
    found = _first(data, REWARD_PATHS)
    if found is None:
        raise violation(
            route,
            "reward_info.outcome_reward",
            "a finite number (or reward_info.score, summary.outcome_reward, reward)",
        )
    score = finite_number(found[1], route, found[0])
    feedback_found = _first(data, FEEDBACK_PATHS)
    if feedback_found is None:
        feedback = f"Score {score:.4g}."
    else:
        feedback = require_str(feedback_found[1], route, feedback_found[0], non_empty=False)
    objectives: dict[str, float] = {}
    reward_info = data.get("reward_info")
    raw_objectives = reward_info.get("objectives") if isinstance(reward_info, Mapping) else None
    if raw_objectives is not None:
        for name, value in require_mapping(raw_objectives, route, "reward_info.objectives").items():
            objectives[str(name)] = finite_number(value, route, f"reward_info.objectives.{name}")
    return RolloutOutcome(
        "completed",
        score,
        feedback,
        data.get("output"),
        objectives,
        _usage(data, route),
        data.get("trace"),
        rollout_id,
        None,
    )


def _usage(data: Mapping[str, Any], route: str) -> Usage:
    raw = data.get("usage")
    if raw is None:
        return Usage()
    usage = require_mapping(raw, route, "usage")
    tokens: list[int] = []
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise violation(route, f"usage.{key}", "a whole number >= 0", value)
        tokens.append(value)
    if "cost_usd" in usage and usage["cost_usd"] is not None:
        cost = finite_number(usage["cost_usd"], route, "usage.cost_usd")
        if cost < 0:
            raise violation(route, "usage.cost_usd", "a number >= 0", cost)
        return Usage(tokens[0], tokens[1], cost, True)
    # tokens were spent but nobody priced them: the cost is unknown, not zero
    return Usage(tokens[0], tokens[1], 0.0, sum(tokens) == 0)
