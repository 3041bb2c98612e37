"""A client of the run service (`gepa-cli gepa service`) over HTTP: submit, watch, control,
and fetch results without touching the service's disk."""

from gepa_cli.client.errors import (
    ServiceFailedError,
    ServiceRefusedError,
    ServiceRequestError,
    ServiceUnreachableError,
    WaitTimeoutError,
)
from gepa_cli.client.service import KEY_ENV, SETTLED, URL_ENV, ServiceClient

__all__ = [
    "KEY_ENV",
    "SETTLED",
    "URL_ENV",
    "ServiceClient",
    "ServiceFailedError",
    "ServiceRefusedError",
    "ServiceRequestError",
    "ServiceUnreachableError",
    "WaitTimeoutError",
]
