"""Racing validation: a child is validated on growing prefixes of one seeded order of
the validation ids and dropped as soon as it is clearly worse than a rival (its
parents, and the current best) on the same examples.

"Clearly worse" is a confidence bound, not a margin. On each stage the paired
differences d = child - rival (scores in [0, 1], so d in [-1, 1]) are taken on the
examples both were scored on. Where d = 0 the two agree and say nothing about which is
better, so the bound is taken over the m discordant examples only: the sign of the
mean difference is the sign of the mean over the discordant ones, and Hoeffding's
inequality bounds that mean by ``mean + 2 * sqrt(ln(K / delta) / (2 m))``, K being the
number of (stage, rival) tests of the screen (a union bound, so one screen drops a
child that is not worse with probability at most delta). Conditioning on discordance
matters: two prompts that differ in a few lines agree on most examples, and a bound over
all n examples would need an effect far larger than any one child ever has.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gepa_cli.engine.registry import register
from gepa_cli.engine.validation import (
    FullValidation,
    ScoreBatch,
    Screening,
    StageReport,
    ValidationPolicy,
)

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings

FIRST_STAGE = 25  # examples in the first stage; each next stage doubles it
DELTA = 0.05  # the chance one screen drops a child that is not worse than its rivals


def stage_sizes(val_size: int, first: int = FIRST_STAGE) -> list[int]:
    """Prefix sizes of the stages: first, 2 * first, ... and the whole set last."""
    sizes: list[int] = []
    size = max(1, first)
    while size < val_size:
        sizes.append(size)
        size *= 2
    sizes.append(val_size)
    return sizes


def worse_bound(
    child: Mapping[str, float],
    rival: Mapping[str, float],
    ids: Sequence[str],
    tests: int,
    delta: float,
) -> dict[str, Any]:
    """The paired comparison of child and rival on ``ids`` (both scored there)."""
    diffs = [child[e] - rival[e] for e in ids]
    discordant = [d for d in diffs if d != 0.0]
    m = len(discordant)
    upper = None
    if m:
        radius = 2.0 * math.sqrt(math.log(tests / delta) / (2.0 * m))
        upper = sum(discordant) / m + radius
    return {
        "n": len(diffs),
        "discordant": m,
        "mean_diff": sum(diffs) / len(diffs) if diffs else 0.0,
        "upper_bound": upper,
        "clearly_worse": upper is not None and upper < 0.0,
    }


class RacingValidation(FullValidation):
    name = "racing"

    def __init__(self, first_stage: int = FIRST_STAGE, delta: float = DELTA) -> None:
        self.first_stage = first_stage
        self.delta = delta

    def worst_case_rollouts(self, val_size: int) -> int:
        # a child that is never clearly worse runs every stage: the whole set
        return val_size

    def draw_order(self, val_ids: Sequence[str], rng: random.Random) -> list[str]:
        order = sorted(val_ids)
        rng.shuffle(order)
        return order

    async def screen(
        self,
        order: Sequence[str],
        evaluate: ScoreBatch,
        rivals: Mapping[str, Mapping[str, float]],
        report: StageReport,
    ) -> Screening:
        sizes = stage_sizes(len(order), self.first_stage)
        tests = max(1, len(sizes) * len(rivals))
        scores: dict[str, float] = {}
        for index, size in enumerate(sizes, start=1):
            prefix = list(order[:size])
            scores.update(await evaluate(prefix))
            rows = []
            worst: dict[str, Any] | None = None
            for rival_id, rival_scores in sorted(rivals.items()):
                # only examples both were scored on: nothing unseen is imputed
                common = [e for e in prefix if e in rival_scores]
                row = {
                    "candidate_id": rival_id,
                    **worse_bound(scores, rival_scores, common, tests, self.delta),
                }
                rows.append(row)
                if row["clearly_worse"] and (
                    worst is None or row["upper_bound"] < worst["upper_bound"]
                ):
                    worst = row
            decision = (
                "drop" if worst is not None else ("pass" if size == len(order) else "continue")
            )
            report(
                {
                    "stage": index,
                    "stages": len(sizes),
                    "examples": size,
                    "val_mean": sum(scores[e] for e in prefix) / len(prefix),
                    "rivals": [{k: v for k, v in r.items() if k != "clearly_worse"} for r in rows],
                    "decision": decision,
                }
            )
            if worst is not None:
                return Screening(
                    dropped=True,
                    stage=index,
                    scores=dict(sorted(scores.items())),
                    rival_id=str(worst["candidate_id"]),
                    upper_bound=float(worst["upper_bound"]),
                )
        return Screening(stage=len(sizes), scores=dict(sorted(scores.items())))


@register("validation", RacingValidation.name)
def _racing(_settings: EngineSettings) -> ValidationPolicy:
    return RacingValidation()
