"""Entry point of the `gepa-cli` console script.

A top-level command's module is imported only when that command runs (or when the root
help lists them all): `gepa run`, started by a service worker, a CI job or a test, does not
pay for DuckDB, Jinja or the service client it never uses."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import typer
from typer import _click

from gepa_cli.cli.app import HandledGroup, root_callback


def _load(target: str, *attach: str) -> Any:
    """``module:attribute``, after importing ``attach``: modules whose commands join it."""
    for module in attach:
        importlib.import_module(module)
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def _group(target: str, *attach: str) -> _click.Command:
    return typer.main.get_group(_load(target, *attach))


def _command(target: str) -> _click.Command:
    return typer.main.get_command(_load(target))


# The root's commands in the order help lists them; each built on first use.
COMMANDS: dict[str, Callable[[], _click.Command]] = {
    "query": partial(_command, "gepa_cli.cli.query:query_app"),
    "show": partial(_command, "gepa_cli.cli.view:show_app"),
    "diff": partial(_command, "gepa_cli.cli.view:diff_app"),
    "report": partial(_command, "gepa_cli.cli.view:report_app"),
    "gepa": partial(
        _group, "gepa_cli.cli.gepa:gepa_app", "gepa_cli.cli.gepa_run", "gepa_cli.cli.service"
    ),
    "events": partial(_group, "gepa_cli.cli.events:events_app"),
    "cache": partial(_group, "gepa_cli.cli.cache:cache_app"),
    "container": partial(_group, "gepa_cli.cli.container:container_app"),
    "workspace": partial(_group, "gepa_cli.cli.workspace:workspace_app"),
    "remote": partial(_group, "gepa_cli.cli.remote:remote_app"),
    "online": partial(_group, "gepa_cli.cli.online:online_app"),
}


class RootGroup(HandledGroup):
    """The root group: lists every command, builds one only when it is asked for."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(COMMANDS[cmd_name](), cmd_name)
        return super().get_command(ctx, cmd_name)

    def all_commands(self, ctx: _click.Context) -> dict[str, _click.Command]:
        """Every command, built (for tools that walk the whole tree, such as the docs test)."""
        return {name: command for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None}  # fmt: skip


app = typer.Typer(
    cls=RootGroup,
    help="Optimize the text components of an AI system with GEPA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.callback()(root_callback)


def main(args: list[str] | None = None) -> None:
    """The console script; ``args`` (without the program name) when called in process,
    as a service worker's child does."""
    if args is None:
        app()
    else:
        app(args=args, prog_name="gepa-cli")


if __name__ == "__main__":  # pragma: no cover
    main()
