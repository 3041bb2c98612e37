"""Errors the service answers with: each maps to one HTTP status and a JSON error body."""

from __future__ import annotations

from typing import ClassVar

from gepa_cli.errors import GepaCliError


class ServiceError(GepaCliError):
    """A request to the service cannot be served as asked."""

    error_code: ClassVar[str] = "service_error"
    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500


class BadRequestError(ServiceError):
    error_code = "bad_request"
    exit_code = 2
    http_status = 400


class PathNotAllowedError(BadRequestError):
    """A path in a request resolves outside the service's allowed roots."""

    error_code = "path_not_allowed"


class UnauthorizedError(ServiceError):
    error_code = "unauthorized"
    exit_code = 2
    http_status = 401


class NotFoundError(ServiceError):
    error_code = "not_found"
    exit_code = 2
    http_status = 404


class ConflictError(ServiceError):
    """The request is in a state that does not allow the operation."""

    error_code = "conflict"
    exit_code = 2
    http_status = 409


class LeaseLostError(ServiceError):
    """A worker's lease on a request expired and was taken over (or the row is gone)."""

    error_code = "lease_lost"


class AddressInUseError(ServiceError):
    """The service cannot listen on the address it was given."""

    error_code = "address_in_use"
    exit_code = 2


class ServiceUnavailableError(ServiceError):
    """The service cannot take this now (it is shutting down); another process can."""

    error_code = "service_unavailable"
    http_status = 503
