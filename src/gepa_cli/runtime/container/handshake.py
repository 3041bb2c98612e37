"""What the optimizer checks before spending budget (container-contract.md, last section).

`handshake` checks health, metadata, program and dataset rows and returns everything
a run needs from the container. With ``live=False`` (readonly replay) it makes no
HTTP call at all: program and rows come from the cache, and a miss raises the
cache's `CacheMissError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gepa_cli.config.models import GepaConfig
from gepa_cli.contracts import SYNTH_GEPA_V2
from gepa_cli.errors import ConfigError, ContainerContractError, ContainerError
from gepa_cli.runtime.boundary import ResponseCache
from gepa_cli.runtime.container import synth_v2
from gepa_cli.runtime.container.client import ContainerClient
from gepa_cli.runtime.container.contract import (
    CONTRACT_VERSION,
    Program,
    Routes,
    check_health_version,
    parse_health,
    parse_metadata,
    parse_program,
    parse_rows,
    resolve_targets,
    violation,
)

ROLES = ("train", "val", "heldout")


@dataclass(frozen=True)
class SplitRows:
    role: str  # train, val or heldout
    split: str  # the container's split name
    seeds: tuple[int, ...]
    rows: tuple[Mapping[str, Any], ...]

    @property
    def example_ids(self) -> list[str]:
        return [str(row["example_id"]) for row in self.rows]


@dataclass(frozen=True)
class HandshakeResult:
    metadata: Mapping[str, Any] | None  # None in replay (live=False): nothing was asked
    routes: Routes
    program: Program
    target_modules: tuple[str, ...]  # candidate_field names, e.g. ("system_prompt",)
    seed_texts: Mapping[str, str]
    splits: Mapping[str, SplitRows] = field(default_factory=dict)  # role -> rows

    @property
    def program_id(self) -> str:
        return self.program.program_id

    def example_ids(self, role: str) -> list[str]:
        rows = self.splits.get(role)
        return rows.example_ids if rows else []

    def rows_by_id(self) -> dict[str, Mapping[str, Any]]:
        index: dict[str, Mapping[str, Any]] = {}
        for split_rows in self.splits.values():
            for row in split_rows.rows:
                index[str(row["example_id"])] = row
        return index

    def summary(self) -> dict[str, Any]:
        return {
            "program_id": self.program_id,
            "name": (self.metadata or {}).get("name"),
            "contract": self.routes.contract,
            "routes": {
                "program": self.routes.program,
                "dataset_rows": self.routes.dataset_rows,
                "rollout": self.routes.rollout,
            },
            "target_modules": list(self.target_modules),
            "seed_texts": dict(self.seed_texts),
            "dataset": {
                role: {"split": rows.split, "size": len(rows.rows)}
                for role, rows in self.splits.items()
            },
        }


async def wait_healthy(client: ContainerClient, timeout_seconds: float) -> str | None:
    """Poll /health until it answers ok; a wrong answer is a contract error at once.
    Returns the contract_version it names."""
    deadline = time.monotonic() + timeout_seconds
    last = ""
    while True:
        try:
            body = (await client.call("GET", "/health")).body
        except ContainerError as exc:
            last = exc.one_line()
        else:
            return parse_health(body)
        if time.monotonic() >= deadline:
            raise ContainerError(
                f"container at {client.base_url} did not answer GET /health within "
                f"{timeout_seconds:g}s: {last}",
                hint="check that it is running (see container.log) or raise "
                "container.startup_timeout_seconds",
                route="GET /health",
            )
        await asyncio.sleep(0.1)


def _replay_only(boundary: str) -> Any:
    async def live() -> dict[str, Any]:
        raise ContainerError(
            f"{boundary} is not in the cache and no container is running (replay mode)",
            hint="record the run with cache mode 'readwrite' first, or run with a container",
        )

    return live


async def handshake(
    config: GepaConfig,
    client: ContainerClient | None,
    cache: ResponseCache,
    *,
    live: bool = True,
    health_timeout_seconds: float | None = None,
) -> HandshakeResult:
    """Check the container against the config before any rollout is spent."""
    metadata: dict[str, Any] | None = None
    routes = Routes()
    if live:
        if client is None:
            raise ValueError("a live handshake needs a ContainerClient")
        timeout = health_timeout_seconds or config.container.startup_timeout_seconds
        health_version = await wait_healthy(client, timeout)
        metadata, routes = parse_metadata(
            await client.get_json("/metadata"), config.container.contract
        )
        check_health_version(health_version, routes.contract)

    async def fetch_program() -> dict[str, Any]:
        assert client is not None
        body = await client.get_json(routes.program)
        if not isinstance(body, dict):
            raise violation(f"GET {routes.program}", "(body)", "a JSON object", body)
        parse_program(body, f"GET {routes.program}")  # never record a wrong answer
        return body

    program_body, _ = await cache.through(
        "container.program",
        {"contract_version": CONTRACT_VERSION},
        fetch_program if live else _replay_only("container.program"),
    )
    program = parse_program(program_body, f"GET {routes.program}")
    unknown = sorted(set(config.seed_candidate) - _names(program, config.candidate.target_modules))
    if unknown:
        raise ConfigError(
            f"[seed_candidate] names '{unknown[0]}', which is not a target module",
            hint="add it to [candidate].target_modules or remove it from [seed_candidate]",
        )
    targets, seeds = resolve_targets(
        program, config.candidate.target_modules, config.seed_candidate, f"GET {routes.program}"
    )
    dataset = config.dataset
    wanted: list[tuple[str, str, list[int]]] = [
        ("train", dataset.train_split, list(dataset.train_seeds)),
        ("val", dataset.resolved_val_split, dataset.resolved_val_seeds),
    ]
    if dataset.heldout_seeds and dataset.heldout_split:
        wanted.append(("heldout", dataset.heldout_split, list(dataset.heldout_seeds)))
    fetched: dict[tuple[str, tuple[int, ...]], tuple[Mapping[str, Any], ...]] = {}
    splits: dict[str, SplitRows] = {}
    for role, split, seed_list in wanted:
        key = (split, tuple(seed_list))
        if key not in fetched:
            fetched[key] = await _rows(client, cache, routes, split, seed_list, live)
        splits[role] = SplitRows(role, split, key[1], fetched[key])
    _check_consistent(splits, routes)
    return HandshakeResult(metadata, routes, program, targets, seeds, splits)


def _names(program: Program, configured: Sequence[str] | None) -> set[str]:
    names = set(configured or program.target_modules)
    return names | {program.module_ids.get(name, name) for name in names}


async def _rows(
    client: ContainerClient | None,
    cache: ResponseCache,
    routes: Routes,
    split: str,
    seeds: list[int],
    live: bool,
) -> tuple[Mapping[str, Any], ...]:
    request = {"split": split, "seeds": seeds}

    async def fetch() -> dict[str, Any]:
        assert client is not None
        return await fetch_rows(client, routes, split, seeds)

    body, _ = await cache.through(
        "container.dataset_rows",
        {"contract_version": CONTRACT_VERSION, **request},
        fetch if live else _replay_only("container.dataset_rows"),
    )
    return tuple(parse_rows(body, split, seeds, f"POST {routes.dataset_rows}"))


async def fetch_rows(
    client: ContainerClient, routes: Routes, split: str, seeds: list[int]
) -> dict[str, Any]:
    """Rows of ``split`` for ``seeds`` as a checked v1 ``{"rows": [...]}``, whatever the
    contract; checked before the cache stores it: a wrong answer is never recorded."""
    route = f"POST {routes.dataset_rows}"
    if routes.contract == SYNTH_GEPA_V2:
        answer = await client.post_json(routes.dataset_rows, synth_v2.tasks_request(split, seeds))
        answer = synth_v2.rows_from_tasks(answer, split, seeds, route)
    else:
        answer = await client.post_json(routes.dataset_rows, {"split": split, "seeds": seeds})
    parse_rows(answer, split, seeds, route)
    return dict(answer)


def _check_consistent(splits: Mapping[str, SplitRows], routes: Routes) -> None:
    """The same example_id must mean the same row in every role it appears in."""
    seen: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for role, split_rows in splits.items():
        for row in split_rows.rows:
            example_id = str(row["example_id"])
            previous = seen.get(example_id)
            if previous is not None and previous[1] != row:
                raise ContainerContractError(
                    f"container contract violation at POST {routes.dataset_rows}: field "
                    f"'example_id' must be stable, but '{example_id}' names different rows in "
                    f"{previous[0]} and {role}",
                    hint="give every row a unique, stable example_id (e.g. 'train:0')",
                    route=f"POST {routes.dataset_rows}",
                    field="example_id",
                )
            seen[example_id] = (role, row)
