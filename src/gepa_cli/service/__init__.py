"""A standing HTTP service with a durable run queue (SQLite) and child-process workers."""

from gepa_cli.service.app import create_app
from gepa_cli.service.queue import Request, RunQueue
from gepa_cli.service.submit import ServiceSettings

__all__ = ["Request", "RunQueue", "ServiceSettings", "create_app"]
