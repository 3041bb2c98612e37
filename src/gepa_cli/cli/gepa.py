"""`gepa-cli gepa ...`: validate, run, resume, stop."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from gepa_cli.cli.app import new_group
from gepa_cli.config import load_config

gepa_app = new_group("Run, validate, resume and stop GEPA optimizations.")

CONFIG_OPTION = typer.Option(..., "--config", "-c", help="Path to the TOML config file.")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")


@gepa_app.command("validate")
def validate(config: Path = CONFIG_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Validate a config file and print the resolved config."""
    resolved = load_config(config).resolved_dict()
    if as_json:
        typer.echo(orjson.dumps({"ok": True, "config": resolved}, option=orjson.OPT_INDENT_2))
        return
    typer.echo(orjson.dumps(resolved, option=orjson.OPT_INDENT_2).decode())
    typer.echo(f"{config}: valid", err=True)
