"""`gepa-cli gepa ...`: validate, run, resume, stop."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import orjson
import typer

from gepa_cli.cli.app import new_group
from gepa_cli.config import GepaConfig, load_config
from gepa_cli.engine import EngineSettings, preview_budget
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.container import ContainerSession

gepa_app = new_group("Run, validate, resume and stop GEPA optimizations.")

CONFIG_OPTION = typer.Option(..., "--config", "-c", help="Path to the TOML config file.")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")
SKIP_CONTAINER_OPTION = typer.Option(
    False, "--skip-container", help="Only check the file; do not start or call the container."
)


async def _check_container(config: GepaConfig, config_path: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gepa-validate-") as log_dir:
        session = ContainerSession(
            config, NoCache(), base_dir=config_path.resolve().parent, log_dir=Path(log_dir)
        )
        async with session:
            return {"url": session.url, **session.handshake.summary()}


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


@gepa_app.command("validate")
def validate(
    config: Path = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
    skip_container: bool = SKIP_CONTAINER_OPTION,
) -> None:
    """Validate a config file and check its container (health, metadata, program, rows)."""
    loaded = load_config(config)
    resolved = loaded.resolved_dict()
    container = None if skip_container else asyncio.run(_check_container(loaded, config))
    modules = (
        len(container["target_modules"])
        if container
        else len(loaded.candidate.target_modules or [None])
    )
    preview = budget_preview(loaded, modules)
    proposals = preview["proposals"]
    if proposals is not None and proposals < 3:
        typer.echo(
            f"warning: the budget allows only {proposals} proposal(s) "
            f"(limited by {preview['limited_by']}; seed validation takes "
            f"{preview['seed_rollouts']} rollouts, each proposal up to "
            f"{preview['rollouts_per_proposal']}); raise it or shrink the validation set",
            err=True,
        )
    if as_json:
        payload: dict[str, Any] = {"ok": True, "config": resolved, "budget_preview": preview}
        if container is not None:
            payload["container"] = container
        typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        return
    typer.echo(orjson.dumps(resolved, option=orjson.OPT_INDENT_2).decode())
    if container is not None:
        sizes = ", ".join(
            f"{role} {info['size']} ({info['split']})"
            for role, info in container["dataset"].items()
        )
        typer.echo(f"program: {container['program_id']}")
        typer.echo(f"target modules: {', '.join(container['target_modules'])}")
        typer.echo(f"dataset: {sizes}")
    typer.echo(
        f"budget: {'unbounded' if proposals is None else proposals} proposal(s), "
        f"{preview['rollouts_per_proposal']} rollouts each at most "
        f"(limited by {preview['limited_by']})"
    )
    typer.echo(f"{config}: valid", err=True)
