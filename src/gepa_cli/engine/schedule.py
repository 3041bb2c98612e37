"""How large a reflection's minibatch is."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

from gepa_cli.engine.registry import register

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings

# under "validation_share", the parent and child minibatch evaluations together cost
# this share of one validation (so a proposal is not starved of evidence next to it)
VALIDATION_SHARE = 0.2


class MinibatchSchedule(Protocol):
    name: str

    def size(self, minibatch_size: int, val_size: int) -> int:
        """The minibatch size (before capping at the number of training examples)."""
        ...


class FixedMinibatch:
    name = "fixed"

    def size(self, minibatch_size: int, val_size: int) -> int:
        return minibatch_size


class ValidationShare:
    """Parent and child minibatch runs cost `VALIDATION_SHARE` of one validation."""

    name = "validation_share"

    def size(self, minibatch_size: int, val_size: int) -> int:
        return max(minibatch_size, math.ceil(VALIDATION_SHARE * val_size / 2))


@register("minibatch_schedule", FixedMinibatch.name)
def _fixed(_settings: EngineSettings) -> MinibatchSchedule:
    return FixedMinibatch()


@register("minibatch_schedule", ValidationShare.name)
def _validation_share(_settings: EngineSettings) -> MinibatchSchedule:
    return ValidationShare()
