"""`gepa-cli container check`: is this container ready for a run? Every problem at once."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import typer

from gepa_cli.cli.app import new_group
from gepa_cli.config import GepaConfig, load_config
from gepa_cli.contracts import AUTO, CONTRACTS
from gepa_cli.errors import ConfigError
from gepa_cli.runtime.container import ContainerClient, ContainerLauncher, policy_body
from gepa_cli.runtime.container.check import CheckReport, check_container

container_app = new_group("Check containers while you write them.")


@container_app.command("check")
def check(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Check the container of this config (started if needed)."
    ),
    url: str | None = typer.Option(None, "--url", help="Check a running container at this URL."),
    contract: str = typer.Option(
        AUTO, "--contract", help=f"With --url: {AUTO} (read /metadata) or {', '.join(CONTRACTS)}."
    ),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="With --url: the env var holding the container's key."
    ),
    timeout: float = typer.Option(
        10.0, "--timeout", help="Seconds to wait for /health and for each request."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Run the handshake and one sample rollout per split, timed; list every contract
    violation (route, field, expected, got) and end with a verdict. Exit 0 when the
    container is correct, 1 when it is not."""
    if (config is None) == (url is None):
        raise ConfigError("give exactly one of --config and --url", hint="see --help")
    if contract not in (AUTO, *CONTRACTS):
        raise ConfigError(
            f"--contract {contract!r} is not a known contract",
            hint=f"use {AUTO} or one of {', '.join(CONTRACTS)}",
        )
    if config is not None:
        report = asyncio.run(_check_config(load_config(config), config, timeout))
    else:
        assert url is not None
        report = asyncio.run(_check_url(url, contract, api_key_env, timeout))
    if as_json:
        typer.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(report.render(), err=True)
    if not report.ok:
        raise typer.Exit(1)


async def _check_url(
    url: str, contract: str, api_key_env: str | None, timeout: float
) -> CheckReport:
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(
                f"--api-key-env names {api_key_env}, which is not set",
                hint=f"export {api_key_env}=<the container's key>",
            )
    async with ContainerClient(url, timeout_seconds=timeout, retries=0, api_key=api_key) as client:
        return await check_container(client, contract=contract, health_timeout_seconds=timeout)


async def _check_config(config: GepaConfig, path: Path, timeout: float) -> CheckReport:
    dataset = config.dataset
    roles = [
        (dataset.train_split, list(dataset.train_seeds)),
        (dataset.resolved_val_split, dataset.resolved_val_seeds),
    ]
    if dataset.heldout_split and dataset.heldout_seeds:
        roles.append((dataset.heldout_split, list(dataset.heldout_seeds)))
    splits: dict[str, list[int]] = {}
    for split, seeds in roles:  # one sample per split, from the seeds the run will use
        splits.setdefault(split, seeds[:2])
    options: dict[str, Any] = {
        "contract": config.container.contract,
        "splits": list(splits.items()),
        "target_modules": config.candidate.target_modules,
        "seed_texts": config.seed_candidate,
        "policy": policy_body(config.policy),
        "submission_mode": config.gepa.rollout_submission_mode,
        "health_timeout_seconds": max(timeout, config.container.startup_timeout_seconds),
    }
    with tempfile.TemporaryDirectory(prefix="gepa-check-") as log_dir:
        launcher = ContainerLauncher(
            config.container, base_dir=path.resolve().parent, log_dir=Path(log_dir)
        )
        async with launcher as base_url:
            client = ContainerClient.from_config(config.container, base_url)
            async with client:
                return await check_container(client, **options)
