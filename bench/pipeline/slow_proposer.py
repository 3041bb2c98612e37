"""The Banking77 offline proposer, answering ``--latency`` seconds late.

A command proposer (``[proposer] backend = "command"``, ``input = "json"``) for the
pipeline benchmark: it sleeps as a remote model's reply would take, then runs the
cookbook's offline proposer on the request.

    python slow_proposer.py --latency 5 < request.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cookbooks" / "banking77"))
from banking77_task.propose import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait first")
    args = parser.parse_args()
    time.sleep(args.latency)
    sys.exit(main())
