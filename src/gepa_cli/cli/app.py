"""The root Typer app and the one error handler every command goes through."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup

import gepa_cli
from gepa_cli.errors import GepaCliError

_state = {"debug": False}


def fail(error: GepaCliError) -> None:
    """Print one line for ``error`` on stderr and exit with its code."""
    if _state["debug"]:
        traceback.print_exception(error, file=sys.stderr)
    typer.echo(f"error [{error.error_code}]: {error.one_line()}", err=True)
    raise typer.Exit(error.exit_code)


class HandledGroup(TyperGroup):
    """Turns every `GepaCliError` into one line on stderr; no traceback unless --debug."""

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GepaCliError as error:
            fail(error)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:
            if _state["debug"]:
                raise
            typer.echo(
                f"error [internal_error]: {type(error).__name__}: {error}; "
                "rerun with --debug for the traceback and report it",
                err=True,
            )
            raise typer.Exit(1) from None


def new_group(help_text: str) -> typer.Typer:
    """A command group (`gepa`, `events`...): every error it raises goes through `fail`."""
    return typer.Typer(
        cls=HandledGroup,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def one_command() -> typer.Typer:
    """A Typer holding one top-level command (`query`, `show`...): it becomes that command."""
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gepa-cli {gepa_cli.__version__}")
        raise typer.Exit()


def root_callback(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Optimize the text components of an AI system with GEPA."""
    _state["debug"] = debug
