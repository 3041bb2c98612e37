"""Errors of the workspace lens; defined with the others in `gepa_cli.errors`."""

from gepa_cli.errors import QueryError, WorkspaceError

__all__ = ["QueryError", "WorkspaceError"]
