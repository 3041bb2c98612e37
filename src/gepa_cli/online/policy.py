"""The serving policy: who gets which share of the traffic, and when a challenger wins.

Traffic: the incumbent (the best so far) gets ``1 - explore_share``; the active
challengers split ``explore_share`` equally. With no challenger, or while the session
is paused or over, one candidate gets everything. A call is routed by a number in
[0, 1) derived from the session seed and the call's serial, so the choice needs no
random state and a replay of the same calls makes the same choices.

Comparison: a sequential two-sample test with alpha spending. A challenger is compared
with the incumbent at looks ``k = 0, 1, 2, ...`` when its reward count reaches
``min_rewards * 2**k`` (and at ``max_rewards``), once the incumbent has ``min_rewards``
too. Look ``k`` spends ``alpha * 2**-(k+1)`` of the total ``alpha = 1 - confidence``,
so over all looks the chance of promoting a challenger that is not better stays below
``alpha`` (a union bound; each look uses Welch's normal interval for the difference of
mean rewards). At a look the challenger is

- promoted when the interval's lower end is above ``min_improvement``;
- retired as worse when its upper end is below ``min_improvement``;
- retired as inconclusive when it reached ``max_rewards`` without being promoted.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from gepa_cli.artifacts.session_fold import ACTIVE, RewardStats, SessionFold
from gepa_cli.online.config import OnlineSettings


def traffic_shares(fold: SessionFold, settings: OnlineSettings) -> dict[str, float]:
    """The share of calls each candidate gets in the fold's current state."""
    serving = fold.serving_id
    if serving is None:
        return {}
    if fold.state != ACTIVE or not fold.challengers:
        return {serving: 1.0}
    each = settings.explore_share / len(fold.challengers)
    shares = {serving: 1.0 - settings.explore_share}
    for cid in fold.challengers:
        shares[cid] = each
    return shares


def unit_draw(seed: int, serial: int) -> float:
    """A number in [0, 1) fixed by (seed, serial): the randomness of one routing choice."""
    digest = hashlib.sha256(f"gepa-online:{seed}:{serial}".encode()).digest()
    value: int = struct.unpack(">Q", digest[:8])[0]
    return value / 2.0**64


def choose(shares: Mapping[str, float], draw: float) -> str:
    """The candidate whose slice of [0, 1) holds ``draw`` (slices in candidate-id order)."""
    ordered = sorted(shares.items())
    total = sum(share for _, share in ordered)
    point = draw * total
    running = 0.0
    for cid, share in ordered:
        running += share
        if point < running:
            return cid
    return ordered[-1][0]


def look_points(settings: OnlineSettings) -> list[int]:
    """Reward counts at which a challenger is compared (doubling, capped at max_rewards)."""
    points, n = [], settings.min_rewards
    while n < settings.max_rewards:
        points.append(n)
        n *= 2
    points.append(settings.max_rewards)
    return points


@dataclass(frozen=True)
class Comparison:
    candidate_id: str
    incumbent_id: str
    look: int
    alpha: float
    n: int
    mean: float
    incumbent_n: int
    incumbent_mean: float
    diff: float
    lower: float
    upper: float
    decision: str  # continue | promote | retire_worse | retire_inconclusive

    def to_event(self) -> dict[str, Any]:
        return {
            "candidate_id": self.candidate_id,
            "incumbent_id": self.incumbent_id,
            "look": self.look,
            "alpha": self.alpha,
            "n": self.n,
            "mean": self.mean,
            "incumbent_n": self.incumbent_n,
            "incumbent_mean": self.incumbent_mean,
            "diff": self.diff,
            "lower": self.lower,
            "upper": self.upper,
            "decision": self.decision,
        }


def due_look(looks_done: int, challenger_rewards: int, settings: OnlineSettings) -> int | None:
    """The index of the next look if the challenger has reached it, else None."""
    points = look_points(settings)
    if looks_done >= len(points):
        return None
    return looks_done if challenger_rewards >= points[looks_done] else None


def compare(
    challenger_id: str,
    challenger: RewardStats,
    incumbent_id: str,
    incumbent: RewardStats,
    look: int,
    settings: OnlineSettings,
) -> Comparison:
    alpha_total = 1.0 - settings.confidence
    alpha = alpha_total * 2.0 ** -(look + 1)
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    diff = challenger.mean - incumbent.mean
    se = math.sqrt(challenger.variance / challenger.n + incumbent.variance / incumbent.n)
    lower, upper = diff - z * se, diff + z * se
    final = look == len(look_points(settings)) - 1
    if lower > settings.min_improvement:
        decision = "promote"
    elif upper < settings.min_improvement:
        decision = "retire_worse"
    elif final:
        decision = "retire_inconclusive"
    else:
        decision = "continue"
    return Comparison(
        candidate_id=challenger_id,
        incumbent_id=incumbent_id,
        look=look,
        alpha=alpha,
        n=challenger.n,
        mean=challenger.mean,
        incumbent_n=incumbent.n,
        incumbent_mean=incumbent.mean,
        diff=diff,
        lower=lower,
        upper=upper,
        decision=decision,
    )
