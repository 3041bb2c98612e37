"""Crafter's rules as data: actions, materials, items, recipes, achievements.

Read from the game's own ``data.yaml`` (what ``crafter.constants`` loads) without
importing the game itself (numpy, imageio, Pillow): the offline proposer runs once per
proposal as a fresh process, and only needs these facts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def _data_file() -> Path:
    spec = importlib.util.find_spec("crafter")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'crafter' package is not installed (pip install crafter==1.8.3)")
    return Path(next(iter(spec.submodule_search_locations))) / "data.yaml"


_DATA: dict[str, Any] = YAML(typ="safe", pure=True).load(_data_file().read_text())

ACTIONS: tuple[str, ...] = tuple(_DATA["actions"])
MATERIALS: tuple[str, ...] = tuple(_DATA["materials"])
WALKABLE: frozenset[str] = frozenset(_DATA["walkable"])
ITEMS: tuple[str, ...] = tuple(_DATA["items"])
MAX_ITEM: dict[str, int] = {name: int(info["max"]) for name, info in _DATA["items"].items()}
COLLECT: dict[str, dict[str, Any]] = dict(_DATA["collect"])
PLACE: dict[str, dict[str, Any]] = dict(_DATA["place"])
MAKE: dict[str, dict[str, Any]] = dict(_DATA["make"])
ACHIEVEMENTS: tuple[str, ...] = tuple(_DATA["achievements"])
