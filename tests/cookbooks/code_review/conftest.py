"""Put the cookbook on sys.path, as the optimizer does for `[container] app`."""

from __future__ import annotations

import sys
from pathlib import Path

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "code_review"
if str(COOKBOOK) not in sys.path:
    sys.path.insert(0, str(COOKBOOK))
