"""Errors of online sessions: each is one HTTP status and one line, as the service's are."""

from __future__ import annotations

from gepa_cli.service.errors import ConflictError, NotFoundError, ServiceError


class SessionStateError(ServiceError):
    """A session's run directory cannot be read back (edited, truncated or damaged)."""

    error_code = "session_damaged"
    exit_code = 2
    http_status = 500


class UnknownSessionError(NotFoundError):
    error_code = "unknown_session"


class SessionUnavailableError(ServiceError):
    """The session exists but this process cannot serve it (held by another process, or
    its run directory cannot be read)."""

    error_code = "session_unavailable"
    http_status = 503


class UnknownRolloutError(NotFoundError):
    error_code = "unknown_rollout"


class LifecycleConflictError(ConflictError):
    """The session's lifecycle state does not allow the operation (docs/online.md)."""

    error_code = "session_conflict"


class RewardConflictError(ConflictError):
    """A second, different reward for a rollout, or a reward for one that cannot take it."""

    error_code = "reward_conflict"


class InvalidRewardError(ServiceError):
    error_code = "invalid_reward"
    exit_code = 2
    http_status = 422
