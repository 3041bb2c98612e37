"""`gepa-cli gepa ...`: validate, run, resume, stop."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import typer

from gepa_cli.cli.app import new_group
from gepa_cli.config import GepaConfig, load_config
from gepa_cli.engine import EngineSettings, preview_budget
from gepa_cli.errors import ContainerError, ProposerError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container import ContainerSession
from gepa_cli.runtime.preflight import EndpointCheck, check_policy, check_proposer

gepa_app = new_group("Run, validate, resume and stop GEPA optimizations.")

CONFIG_OPTION = typer.Option(..., "--config", "-c", help="Path to the TOML config file.")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")
SKIP_CONTAINER_OPTION = typer.Option(
    False,
    "--skip-container",
    help="Only check the file; start or call nothing (container, policy or proposer).",
)
# proposals below this guarantee get a warning: fewer gives GEPA little to choose from
FEW_PROPOSALS = 3


READONLY = "[cache] mode is readonly: a replay calls no model"


async def _check_container(
    config: GepaConfig, config_path: Path, *, check_models: bool
) -> tuple[dict[str, Any], EndpointCheck]:
    with tempfile.TemporaryDirectory(prefix="gepa-validate-") as log_dir:
        session = ContainerSession(
            config, NoCache(), base_dir=config_path.resolve().parent, log_dir=Path(log_dir)
        )
        async with session:
            assert session.client is not None
            policy = (
                await check_policy(config, session.client, session.handshake.routes)
                if check_models
                else EndpointCheck("policy", None, READONLY)
            )
            return {"url": session.url, **session.handshake.summary()}, policy


def budget_preview(config: GepaConfig, modules: int) -> dict[str, Any]:
    """How many proposals the budget allows, counted as the engine will count them."""
    settings = EngineSettings.from_mapping(config.gepa.model_dump())
    return preview_budget(
        settings,
        val_size=len(config.dataset.resolved_val_seeds),
        train_size=len(config.dataset.train_seeds),
        heldout_size=len(config.dataset.heldout_seeds),
        modules=modules,
    ).to_dict()


def budget_line(preview: dict[str, Any]) -> str:
    """The budget as the guarantee it is: each proposal reserves its worst case, and one
    turned down on its minibatch costs less, so a run usually makes more than this."""
    proposals, limit = preview["proposals"], preview["limited_by"]
    if proposals is None:
        return "budget: no proposal limit (a stop rule or time ends the run)"
    if limit == "max_proposals":
        return f"budget: up to {proposals} proposals (max_proposals)"
    return (
        f"budget: at least {proposals} proposals ({limit}; each reserves up to "
        f"{preview['rollouts_per_proposal']} rollouts, and one turned down on its "
        "minibatch uses fewer, so runs usually make more)"
    )


def seed_ranges(seeds: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0:3, 5"``: the config's own range notation, never a list."""
    parts: list[str] = []
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}:{seeds[j] + 1}")
        i = j + 1
    return ", ".join(parts) or "none"


def _endpoint(name: str, section: Any) -> str:
    model = getattr(section, "model", None)
    backend = section.backend
    if backend == "command":
        return f"{name}: command {' '.join(section.command or [])}"
    where = getattr(section, "base_url", None)
    return f"{name}: {backend}" + (f" {model}" if model else "") + (f" at {where}" if where else "")


def _verdict(check: EndpointCheck) -> str:
    return {True: "ok", False: "FAIL", None: "not checked"}[check.ok]


def _warnings(config: GepaConfig, preview: dict[str, Any]) -> list[str]:
    warnings = []
    proposals = preview["proposals"]
    if proposals is not None and proposals < FEW_PROPOSALS:
        warnings.append(
            f"the budget guarantees only {proposals} proposal(s) "
            f"(limited by {preview['limited_by']}; seed validation takes "
            f"{preview['seed_rollouts']} rollouts, each proposal up to "
            f"{preview['rollouts_per_proposal']}); raise it or shrink the validation set"
        )
    wait = config.policy.timeout_seconds
    if wait is not None and wait >= config.container.request_timeout_seconds:
        warnings.append(
            f"[policy] timeout_seconds = {wait:g} is not below [container] "
            f"request_timeout_seconds = {config.container.request_timeout_seconds:g}: a slow "
            "model call outlives the rollout request that waits for it; raise the latter"
        )
    return warnings


@gepa_app.command("validate")
def validate(
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
    skip_container: bool = SKIP_CONTAINER_OPTION,
) -> None:
    """Validate a config file, check its container (health, metadata, program, rows) and
    whether the policy's and the proposer's models answer, before any budget is spent."""
    loaded = load_config(config)
    container: dict[str, Any] | None = None
    checks: list[EndpointCheck] = []
    if not skip_container:
        # a readonly replay calls no model: there is nothing to reach
        live = loaded.cache.mode != "readonly"
        container, policy = asyncio.run(_check_container(loaded, config, check_models=live))
        proposer = (
            asyncio.run(check_proposer(loaded, config.resolve().parent))
            if live
            else EndpointCheck("proposer", None, READONLY)
        )
        checks = [policy, proposer]
    modules = (
        len(container["target_modules"])
        if container
        else len(loaded.candidate.target_modules or [None])
    )
    preview = budget_preview(loaded, modules)
    for warning in _warnings(loaded, preview):
        typer.echo(f"warning: {warning}", err=True)
    failed = [check for check in checks if check.ok is False]
    if as_json:
        payload: dict[str, Any] = {
            "ok": not failed,
            "config": loaded.resolved_dict(),
            "budget_preview": preview,
        }
        if container is not None:
            payload["container"] = container
            payload["checks"] = {check.name: check.to_dict() for check in checks}
        typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    else:
        _print_summary(loaded, config, container, checks, preview)
    if failed:
        first = failed[0]
        if first.name == "policy":
            raise ContainerError(
                first.detail,
                hint="start the model server or fix [policy] (base_url, model, api_key_env)",
            )
        raise ProposerError(
            first.detail, hint="start the model server or fix [proposer] (base_url, command)"
        )
    typer.echo(f"{config}: valid", err=True)


def _print_summary(
    config: GepaConfig,
    path: Path,
    container: dict[str, Any] | None,
    checks: list[EndpointCheck],
    preview: dict[str, Any],
) -> None:
    """A screenful, not the resolved config (that is `--json`): seeds as ranges."""
    dataset = config.dataset
    seeds = {
        "train": (dataset.train_split, dataset.train_seeds),
        "val": (dataset.resolved_val_split, dataset.resolved_val_seeds),
        "heldout": (dataset.heldout_split, dataset.heldout_seeds),
    }
    lines = [f"config: {path}"]
    if container is not None:
        lines.append(
            f"container: {container['program_id']} at {container['url']} "
            f"({container['contract']}), target modules: {', '.join(container['target_modules'])}"
        )
    else:
        lines.append("container: not started (--skip-container)")
    lines.append(
        "dataset: "
        + ", ".join(
            f"{role} {len(ids)} ({split} {seed_ranges(ids)})"
            for role, (split, ids) in seeds.items()
            if ids
        )
    )
    by_name = {check.name: check for check in checks}
    for name, section in (("policy", config.policy), ("proposer", config.proposer)):
        line = _endpoint(name, section)
        check = by_name.get(name)
        if check is not None:
            line += f": {_verdict(check)}: {check.detail}"
        lines.append(line)
    lines.append(budget_line(preview))
    typer.echo("\n".join(lines))
