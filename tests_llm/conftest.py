"""The real-model suite (`make test-llm`): a llama.cpp server with Gemma 3 270M on
loopback, built once into the user's cache by scripts/llm_server.

Not part of `make test`: it needs minutes of CPU. It uses the server `make llm-server`
left running, or starts its own for the session and stops it at the end; when the
server cannot be fetched, built or started, every test that needs it is skipped with
the one-line reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import llm_server  # noqa: E402


@pytest.fixture(scope="session")
def server() -> Iterator[llm_server.Server]:
    try:
        with llm_server.serving() as running:
            yield running
    except llm_server.LlmServerError as exc:
        pytest.skip(f"no local model server: {exc}")
