"""`container check`: every handshake step and one sample rollout per split, timed, with
every contract violation listed instead of only the first.

A step that fails is recorded and the check goes on where it can (with the contract's
default routes when /metadata is wrong, without rollouts when there is no seed text),
so one run shows a container author everything that is wrong.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from gepa_cli.contracts import AUTO, CONTAINER_V1, SYNTH_GEPA_V2
from gepa_cli.errors import ContainerContractError, ContainerError
from gepa_cli.runtime.container import synth_v2
from gepa_cli.runtime.container.client import ContainerClient, SubmissionMode
from gepa_cli.runtime.container.contract import (
    ROUTE_KEYS,
    Routes,
    check_health_version,
    parse_dataset,
    parse_metadata,
    parse_program,
    parse_rollout,
    resolve_targets,
    violation,
)
from gepa_cli.runtime.container.handshake import fetch_rows, wait_healthy

T = TypeVar("T")
SAMPLE_SEEDS = 2  # rows per split: enough to see order, ids and duplicates


@dataclass(frozen=True)
class Violation:
    route: str
    field: str
    expected: str
    got: str
    message: str


@dataclass(frozen=True)
class Step:
    route: str
    ok: bool
    ms: float
    detail: str = ""


@dataclass
class CheckReport:
    url: str
    contract: str | None = None
    steps: list[Step] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and all(step.ok for step in self.steps)

    @property
    def verdict(self) -> str:
        total = sum(step.ms for step in self.steps)
        if self.ok:
            return (
                f"OK: the container at {self.url} speaks {self.contract} "
                f"({len(self.steps)} checks, {total:.0f} ms)"
            )
        failed = sum(not step.ok for step in self.steps)
        return (
            f"FAIL: {len(self.violations)} contract violation(s), {failed} failed check(s) "
            f"at {self.url}; fix them and run the check again"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "contract": self.contract,
            "verdict": self.verdict,
            "steps": [asdict(step) for step in self.steps],
            "violations": [asdict(item) for item in self.violations],
        }

    def render(self) -> str:
        lines = [f"container check: {self.url} (contract {self.contract or 'unknown'})"]
        width = max((len(step.route) for step in self.steps), default=10)
        for step in self.steps:
            mark = "ok  " if step.ok else "FAIL"
            lines.append(f"  {mark}  {step.route:<{width}}  {step.ms:7.1f} ms  {step.detail}")
        if self.violations:
            lines.append("violations:")
            lines += [f"  {item.message}" for item in self.violations]
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(line.rstrip() for line in lines)


class _Checker:
    def __init__(self, report: CheckReport) -> None:
        self.report = report

    async def step(
        self, route: str, call: Callable[[], Awaitable[T]], describe: Callable[[T], str]
    ) -> T | None:
        started = time.perf_counter()
        try:
            value = await call()
        except ContainerContractError as exc:
            self.violation(exc)
            self._record(route, False, started, "contract violation")
            return None
        except ContainerError as exc:
            self._record(route, False, started, exc.message)
            return None
        self._record(route, True, started, describe(value))
        return value

    def violation(self, exc: ContainerContractError) -> None:
        details = exc.details
        self.report.violations.append(
            Violation(
                route=str(details.get("route", "")),
                field=str(details.get("field", "")),
                expected=str(details.get("expected", "")),
                got=str(details.get("got", "")),
                message=exc.message,
            )
        )

    def _record(self, route: str, ok: bool, started: float, detail: str) -> None:
        ms = round((time.perf_counter() - started) * 1000, 1)
        self.report.steps.append(Step(route, ok, ms, detail))


async def check_container(
    client: ContainerClient,
    *,
    contract: str = AUTO,
    splits: Sequence[tuple[str, Sequence[int]]] | None = None,
    target_modules: Sequence[str] | None = None,
    seed_texts: Mapping[str, str] | None = None,
    policy: Mapping[str, Any] | None = None,
    submission_mode: SubmissionMode = "sync",
    health_timeout_seconds: float = 10.0,
) -> CheckReport:
    """Check the container behind ``client``; ``splits`` default to what it serves."""
    report = CheckReport(url=client.base_url)
    check = _Checker(report)

    health = await check.step(
        "GET /health",
        lambda: _health(client, health_timeout_seconds),
        lambda version: f"contract_version {version}" if version else "",
    )
    if not report.steps[-1].ok and not report.violations:
        return report  # nothing answers: every other step would say the same

    metadata = await check.step(
        "GET /metadata",
        lambda: _metadata(client, contract),
        lambda found: f"{found[0].get('name') or ''} routes {_show_routes(found[1])}",
    )
    if metadata is not None:
        routes = metadata[1]
        try:
            check_health_version(health, routes.contract)
        except ContainerContractError as exc:
            check.violation(exc)
    else:  # go on with the routes the contract names by default
        assumed = CONTAINER_V1 if contract == AUTO else contract
        routes = Routes(
            **{name: default or f"/{key.removesuffix('_route')}"
               for name, (key, default) in ROUTE_KEYS[assumed].items()},
            contract=assumed,
        )  # fmt: skip
    report.contract = routes.contract

    async def program_call() -> tuple[str, dict[str, str]]:
        program = parse_program(await client.get_json(routes.program), f"GET {routes.program}")
        _, seeds = resolve_targets(
            program, target_modules, seed_texts or {}, f"GET {routes.program}"
        )
        return program.program_id, seeds

    program = await check.step(
        f"GET {routes.program}", program_call, lambda p: f"{p[0]}: {', '.join(p[1])}"
    )

    async def dataset_call() -> dict[str, int]:
        body = await client.get_json(routes.dataset)
        if routes.contract == SYNTH_GEPA_V2:
            return synth_v2.sizes_from_taskset(body, f"GET {routes.dataset}")
        return parse_dataset(body, f"GET {routes.dataset}")

    sizes = await check.step(
        f"GET {routes.dataset}",
        dataset_call,
        lambda found: ", ".join(f"{name} {size}" for name, size in found.items()),
    )
    if routes.policy_check is not None:  # optional: can rollouts reach their model?
        await check.step(
            f"POST {routes.policy_check}",
            functools.partial(_policy_check, client, routes.policy_check, policy or {}),
            lambda detail: detail,
        )
    if splits is None:
        splits = [
            (name, list(range(min(SAMPLE_SEEDS, size))))
            for name, size in (sizes or {}).items()
            if size > 0
        ]
    for split, seeds in splits:
        rows = await check.step(
            f"POST {routes.dataset_rows} [{split}]",
            functools.partial(fetch_rows, client, routes, split, list(seeds)),
            lambda body: f"{len(body['rows'])} rows",
        )
        if rows is None or program is None or not rows["rows"]:
            continue
        program_id, texts = program
        row = rows["rows"][0]
        example = str(row["example_id"])
        await check.step(
            f"POST {routes.rollout} [{split}]",
            functools.partial(
                _rollout, client, routes, program_id, texts, row, policy or {}, submission_mode
            ),
            lambda score, example=example: f"reward {score:.3g} on {example}",  # type: ignore[misc]
        )
    return report


async def _health(client: ContainerClient, timeout: float) -> str | None:
    return await wait_healthy(client, timeout)


async def _metadata(client: ContainerClient, contract: str) -> tuple[dict[str, Any], Routes]:
    return parse_metadata(await client.get_json("/metadata"), contract)


async def _policy_check(client: ContainerClient, path: str, policy: Mapping[str, Any]) -> str:
    answer = (await client.call("POST", path, {"policy": dict(policy)}, retries=0)).body
    if not isinstance(answer, Mapping) or answer.get("status") != "ok":
        raise violation(f"POST {path}", "status", '"ok"', answer)
    return str(answer.get("detail") or "ok")


def _show_routes(routes: Routes) -> str:
    return f"{routes.program} {routes.dataset} {routes.dataset_rows} {routes.rollout}"


async def _rollout(
    client: ContainerClient,
    routes: Routes,
    program_id: str,
    texts: Mapping[str, str],
    row: Mapping[str, Any],
    policy: Mapping[str, Any],
    mode: SubmissionMode,
) -> float:
    route = f"POST {routes.rollout}"
    body: dict[str, Any] = {
        "task_id": program_id,
        "candidate": dict(texts),
        "policy": dict(policy),
        "dataset_row": dict(row),
        "metadata": {"candidate_id": "check", "split": row.get("split"), "seed": row.get("seed")},
        "submission_mode": mode,
    }
    if routes.contract == SYNTH_GEPA_V2:
        body = synth_v2.rollout_body(body, row)
    answer = (await client.rollout(routes.rollout, body, mode)).body
    if routes.contract == SYNTH_GEPA_V2:
        answer = synth_v2.normalize_rollout(answer, route)
    outcome = parse_rollout(answer, route)
    if outcome.status != "completed":
        raise ContainerContractError(
            f"the sample rollout at {route} failed: {outcome.error}",
            hint="a rollout of the seed candidate should complete; see the container's log",
            route=route,
            field="status",
            expected='"completed" for the seed candidate',
            got=f"failed: {outcome.error}",
        )
    return outcome.score
