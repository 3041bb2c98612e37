"""Snapshots: everything a run needs to continue exactly as if never interrupted."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from gepa_cli.errors import ResumeError

SNAPSHOT_FORMAT = "gepa_cli.engine.checkpoint.v1"
SNAPSHOT_KEYS = (
    "format",
    "settings",
    "rng_seed",
    "rng_state",
    "sampler",
    "state",
    "next_event_index",
    "checkpoints_taken",
)


def rng_state_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def rng_from_json(data: Any) -> random.Random:
    try:
        version, internal, gauss_next = data
        rng = random.Random()
        rng.setstate((int(version), tuple(int(x) for x in internal), gauss_next))
    except (TypeError, ValueError) as exc:
        raise ResumeError(
            f"checkpoint rng_state is not a Random state ({exc})",
            hint="the checkpoint is damaged; start a new run",
        ) from exc
    return rng


def check_snapshot(snapshot: Mapping[str, Any]) -> None:
    """Refuse a snapshot this engine did not write, with the key that does not fit."""
    if not isinstance(snapshot, Mapping):
        raise ResumeError("checkpoint is not a JSON object", hint="start a new run")
    found = snapshot.get("format")
    if found != SNAPSHOT_FORMAT:
        raise ResumeError(
            f"checkpoint format is {found!r}, expected {SNAPSHOT_FORMAT!r}",
            hint="resume it with the gepa-cli version that wrote it, or start a new run",
        )
    missing = [key for key in SNAPSHOT_KEYS if key not in snapshot]
    if missing:
        raise ResumeError(
            f"checkpoint lacks {', '.join(missing)}",
            hint="the checkpoint is incomplete; start a new run",
        )
