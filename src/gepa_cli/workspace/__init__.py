"""Workspace: DuckDB views and status over many run directories (read-only)."""

from gepa_cli.workspace.discover import RunFiles, find_run_dirs, read_runs
from gepa_cli.workspace.errors import QueryError, WorkspaceError
from gepa_cli.workspace.invariants import Invariant
from gepa_cli.workspace.status import RunStatus, WorkspaceStatus, workspace_status
from gepa_cli.workspace.views import Workspace

__all__ = [
    "Invariant",
    "QueryError",
    "RunFiles",
    "RunStatus",
    "Workspace",
    "WorkspaceError",
    "WorkspaceStatus",
    "find_run_dirs",
    "read_runs",
    "workspace_status",
]
