"""Fixtures for the container runtime tests: configs, the reference container, clients."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:  # `support` is shared by every test suite
    sys.path.insert(0, str(TESTS_DIR))

from gepa_cli.config import GepaConfig, config_from_dict  # noqa: E402
from gepa_cli.runtime.container import ContainerClient  # noqa: E402

ConfigFactory = Callable[..., GepaConfig]


def make_config(base_dir: Path | None = None, **sections: dict[str, Any]) -> GepaConfig:
    raw: dict[str, Any] = {
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
    for name, values in sections.items():
        if name == "container" and any(k in values for k in ("app", "command")):
            raw["container"].pop("url")
        if isinstance(values, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **values}
        else:
            raw[name] = values
    return config_from_dict(raw, base_dir=base_dir or Path.cwd())


@pytest.fixture
def config_factory() -> ConfigFactory:
    return make_config


def asgi_client(
    app: Any, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
) -> ContainerClient:
    options: dict[str, Any] = {"timeout_seconds": 2.0, "retries": 2, "backoff_seconds": 0.001}
    options.update(kwargs)
    return ContainerClient(
        "http://container.test", transport=transport or httpx.ASGITransport(app=app), **options
    )


@pytest.fixture
async def ref_client() -> AsyncIterator[tuple[Any, ContainerClient]]:
    from support.reference_container import create_app

    app = create_app()
    async with asgi_client(app) as client:
        yield app, client
