"""Typed errors. Every failure a user can cause or meet is one of these.

Each class has a stable ``error_code`` (for ``--json`` output and the service API)
and an ``exit_code`` (design.md section 8): 2 for bad usage, config or input,
1 for a run or comparison that failed, 130 for an interrupted run.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GepaCliError(Exception):
    """Base of all gepa-cli errors: one line saying what, where and how to fix."""

    error_code: ClassVar[str] = "gepa_cli_error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        self.message = message
        self.hint = hint
        self.details = details
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"error_code": self.error_code, "message": self.one_line()}
        if self.details:
            payload["details"] = self.details
        return payload


class ConfigError(GepaCliError):
    """The config file, an override or a CLI flag is invalid."""

    error_code = "config_error"
    exit_code = 2


class ContainerError(GepaCliError):
    """The container could not be started or reached, or keeps failing."""

    error_code = "container_error"
    exit_code = 1


class ContainerContractError(GepaCliError):
    """The container answered, but not as contract v1 says."""

    error_code = "container_contract_error"
    exit_code = 2


class CacheMissError(GepaCliError):
    """A readonly cache has no entry for a call that would have gone live."""

    error_code = "cache_miss"
    exit_code = 1


class CacheError(GepaCliError):
    """A cache file is unreadable or corrupt."""

    error_code = "cache_error"
    exit_code = 2


class ProposerError(GepaCliError):
    """The proposer failed (non-zero exit, timeout, HTTP error, or too many bad answers)."""

    error_code = "proposer_error"
    exit_code = 1


class BudgetError(GepaCliError):
    """A budget cannot be met (for example too small to evaluate the seed)."""

    error_code = "budget_error"
    exit_code = 2


class ResumeError(GepaCliError):
    """A run cannot be resumed from its checkpoint."""

    error_code = "resume_error"
    exit_code = 2


class EventCompareError(GepaCliError):
    """An event feed could not be read for comparison, normalization or replay."""

    error_code = "event_compare_error"
    exit_code = 2


class CancelledError(GepaCliError):
    """The run was interrupted (Ctrl-C, SIGTERM) and stopped at a safe point."""

    error_code = "cancelled"
    exit_code = 130


class WorkspaceError(GepaCliError):
    """A runs directory or glob cannot be read as run directories."""

    error_code = "workspace_error"
    exit_code = 2


class ViewError(GepaCliError):
    """A run directory, or a candidate in it, cannot be shown, diffed or reported."""

    error_code = "view_error"
    exit_code = 2


class QueryError(GepaCliError):
    """A SQL query over the workspace views failed (DuckDB's message is kept)."""

    error_code = "query_error"
    exit_code = 2
