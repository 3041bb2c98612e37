"""Errors of the service client: what the service answered, or that it did not answer."""

from __future__ import annotations

from typing import Any, ClassVar

from gepa_cli.errors import GepaCliError


class ServiceRequestError(GepaCliError):
    """The service answered with an error body (``code`` is its error code)."""

    error_code: ClassVar[str] = "service_error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, status: int, code: str, **details: Any) -> None:
        self.status = status
        self.code = code
        super().__init__(message, status=status, code=code, **details)


class ServiceRefusedError(ServiceRequestError):
    """4xx: the request was refused (bad input, unknown run, wrong key, wrong state)."""

    error_code = "service_refused"
    exit_code = 2


class ServiceFailedError(ServiceRequestError):
    """5xx: the service failed or is unavailable (shutting down, database gone)."""

    error_code = "service_failed"
    exit_code = 1


class ServiceUnreachableError(GepaCliError):
    """No answer at all: wrong URL, the service is down, or the network dropped."""

    error_code = "service_unreachable"
    exit_code = 1


class WaitTimeoutError(GepaCliError):
    error_code = "timeout"
    exit_code = 1
