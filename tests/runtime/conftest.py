"""Fixtures for the container runtime tests: configs and the reference container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gepa_cli.config import GepaConfig
from gepa_cli.runtime.container import ContainerClient
from support.asgi import asgi_client
from support.task_dir import ConfigFactory, build_config

# a container that is never started (tests hand the client in), small splits, fast retries
RUNTIME_SECTIONS: dict[str, dict[str, Any]] = {
    "container": {
        "url": "http://127.0.0.1:9",
        "request_timeout_seconds": 2.0,
        "retries": 2,
        "retry_backoff_seconds": 0.001,
        "startup_timeout_seconds": 5.0,
    },
    "dataset": {
        "train_split": "train",
        "train_seeds": "0:6",
        "val_seeds": "6:10",
        "heldout_split": "test",
        "heldout_seeds": [0, 1, 2],
    },
    "proposer": {"backend": "command", "command": ["cat"]},
    "gepa": {"max_total_rollouts": 100},
}


def make_config(base_dir: Path | None = None, **sections: dict[str, Any]) -> GepaConfig:
    return build_config(base_dir or Path.cwd(), RUNTIME_SECTIONS, **sections)


@pytest.fixture
def config_factory() -> ConfigFactory:
    return make_config


@pytest.fixture
async def ref_client() -> AsyncIterator[tuple[Any, ContainerClient]]:
    from support.reference_container import create_app

    app = create_app()
    async with asgi_client(app) as client:
        yield app, client
