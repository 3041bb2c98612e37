"""The one way tests run the `gepa-cli` command line in-process."""

from __future__ import annotations

from collections.abc import Mapping

from typer.testing import CliRunner, Result

from gepa_cli.cli.main import app

# an 80-column terminal, as README help blocks are shown
TERMINAL_WIDTH = 80


def run_cli(
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    catch_exceptions: bool = True,
) -> Result:
    """``gepa-cli ARGS...`` in this process; stdout and stderr come back apart.
    ``catch_exceptions=False`` lets an unexpected exception fail the test with its
    traceback instead of becoming an exit code."""
    return CliRunner().invoke(
        app,
        list(args),
        input=input,
        env=dict(env) if env is not None else None,
        catch_exceptions=catch_exceptions,
        prog_name="gepa-cli",
        terminal_width=TERMINAL_WIDTH,
    )
