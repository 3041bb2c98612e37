"""Errors of the workspace lens (status and query over run directories).

They derive from `GepaCliError` so the CLI prints one line and exits 2 (bad input).
"""

from __future__ import annotations

from gepa_cli.errors import GepaCliError


class WorkspaceError(GepaCliError):
    """A runs directory or glob cannot be read as run directories."""

    error_code = "workspace_error"
    exit_code = 2


class QueryError(GepaCliError):
    """A SQL query over the workspace views failed (DuckDB's message is kept)."""

    error_code = "query_error"
    exit_code = 2
