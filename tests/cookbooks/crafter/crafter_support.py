"""Helpers shared by the Crafter cookbook tests."""

from __future__ import annotations


class Trace:
    """A step recorder like the kit's: keeps the steps, refuses to go past ``limit``."""

    def __init__(self, limit: int | None = None) -> None:
        self.steps: list[dict[str, object]] = []
        self.limit = limit

    def __call__(self, **step: object) -> None:
        if self.limit is not None and len(self.steps) >= self.limit:
            raise RuntimeError(f"step limit {self.limit} exceeded")
        self.steps.append(step)
