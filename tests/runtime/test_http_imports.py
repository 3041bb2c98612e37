"""The HTTP stack finds every module it imports (issue 12, defect 11).

httpcore imports ``sniffio`` on every request to learn the async library; when it is
not installed, each rollout pays for several failing imports. Every module the stack
imports lazily must be a declared dependency, so after a warm-up no import fails.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gepa_cli.runtime.container import ContainerClient, UvicornThread
from support.reference_container import create_app, make_row


class FailedImports(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: reached only for a module no finder could find."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        self.names[fullname] += 1
        return None


@pytest.fixture
def failed_imports() -> Iterator[FailedImports]:
    finder = FailedImports()
    sys.meta_path.append(finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


async def test_no_import_fails_per_rollout(failed_imports: FailedImports) -> None:
    body = {
        "task_id": "keywords",
        "candidate": {"system_prompt": "clarity"},
        "dataset_row": make_row("train", 0),
        "submission_mode": "sync",
    }
    with UvicornThread(create_app()) as url:
        async with ContainerClient(url, max_concurrency=4) as client:
            for _ in range(3):  # warm-up: modules imported once on first use
                await client.rollout("/rollout", body)
            before = failed_imports.names.copy()
            for _ in range(20):
                result = await client.rollout("/rollout", body)
                assert result.body["status"] == "completed"
    repeated = failed_imports.names - before
    assert not repeated, f"imports failing again and again per rollout: {dict(repeated)}"
