"""Every interop run must also replay cleanly from its feed alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.checks import replay_check


@pytest.fixture(autouse=True)
def every_run_replays(tmp_path: Path) -> Iterator[None]:
    yield
    for manifest in sorted(tmp_path.rglob("manifest.json")):
        replay_check(manifest.parent)
