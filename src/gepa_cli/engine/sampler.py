"""Epoch-shuffled minibatches over the training ids."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any


class EpochShuffledSampler:
    """Every training id is used once per epoch before any is used again.

    Each epoch is a fresh shuffle; a minibatch that straddles two epochs is filled from
    the start of the next shuffle, skipping ids it already holds, so ids never repeat
    inside one minibatch.
    """

    def __init__(self, train_ids: Sequence[str], minibatch_size: int) -> None:
        if not train_ids:
            raise ValueError("the minibatch sampler needs at least one training id")
        self.train_ids = list(train_ids)
        self.size = min(minibatch_size, len(self.train_ids))
        self.order: list[str] = []
        self.position = 0
        self.epoch = 0

    def _new_epoch(self, rng: random.Random) -> None:
        self.order = list(self.train_ids)
        rng.shuffle(self.order)
        self.position = 0
        self.epoch += 1

    def next_minibatch(self, rng: random.Random) -> list[str]:
        batch: list[str] = []
        while len(batch) < self.size:
            if self.position >= len(self.order):
                self._new_epoch(rng)
            candidate = self.order[self.position]
            if candidate in batch:
                # leave it at the head of this epoch for the next minibatch
                rest = self.order[self.position + 1 :]
                swap = next(i for i, eid in enumerate(rest) if eid not in batch)
                j = self.position + 1 + swap
                self.order[self.position], self.order[j] = self.order[j], self.order[self.position]
                continue
            batch.append(candidate)
            self.position += 1
        return batch

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "position": self.position, "epoch": self.epoch}

    def load(self, data: Mapping[str, Any]) -> None:
        self.order = [str(x) for x in data["order"]]
        self.position = int(data["position"])
        self.epoch = int(data["epoch"])
