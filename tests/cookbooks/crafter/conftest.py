"""Put the Crafter cookbook on sys.path, as the optimizer does for a config's folder.

Test files here are named ``test_crafter_*`` and helpers ``crafter_support``: this folder
is not a package (a package named ``crafter`` would shadow the game), so its module names
must not clash with other cookbooks' tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from crafter_support import Trace

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "crafter"
if str(COOKBOOK) not in sys.path:
    sys.path.insert(0, str(COOKBOOK))


@pytest.fixture()
def cookbook_dir() -> Path:
    return COOKBOOK


@pytest.fixture()
def trace() -> Trace:
    return Trace()
