"""The Crafter cookbook for the quality suite: the real game (crafter 1.8.3), its offline
agent (the playbook's rules, followed step by step) and its offline proposer, in-process.

A rollout plays one whole episode on the row's fixed world with at most `steps` steps
(`Options.crafter_steps`); its score is the share of the 22 achievements unlocked, its
objectives the cookbook's achievement groups. An episode costs real CPU (about 0.2 s
for 150 steps), so this pair runs at small budgets.
"""

from __future__ import annotations

import types
from typing import Any

from quality.core import Options, ProposeFn, Rollout, Task, run_to_end, use_cookbook


def load_task(options: Options) -> Task:
    use_cookbook("crafter")
    from crafter_task import CANDIDATE_FIELD
    from crafter_task.data import SPLITS, row
    from crafter_task.rollout import run_rollout
    from crafter_task.seed import SEED_PLAYBOOK

    steps = options.crafter_steps
    ids = {s: [f"{s}:{i}" for i in range(n)] for s, n in SPLITS.items()}
    rows = {
        f"{s}:{i}": {**row(s, i), "max_steps": steps} for s, n in SPLITS.items() for i in range(n)
    }
    policy = types.SimpleNamespace(backend="offline", params={})

    def no_trace(**_step: Any) -> None:
        pass

    def rollout(text: str, example_id: str) -> Rollout:
        r = rows[example_id]
        out = run_to_end(run_rollout({CANDIDATE_FIELD: text}, r, policy, no_trace))
        return Rollout(
            example_id=example_id,
            inputs=r,
            output=out.output,
            score=float(out.reward),
            feedback=out.feedback,
            objectives=dict(out.objectives),
        )

    return Task(
        name="crafter",
        component=CANDIDATE_FIELD,
        seed_text=SEED_PLAYBOOK,
        train_ids=tuple(ids["train"]),
        val_ids=tuple(ids["val"]),
        heldout_ids=tuple(ids["heldout"]),
        rollout=rollout,
        facts={
            "description": (
                "Crafter (crafter 1.8.3, the cookbook's fixed worlds: one world per row, "
                f"disjoint per split), episodes of at most {steps} steps played by the "
                "cookbook's offline agent in-process; score = share of the 22 achievements."
            ),
            "max_steps": steps,
        },
    )


def cookbook_proposer() -> ProposeFn:
    """The cookbook's offline proposer (stateless: a function of its request)."""
    use_cookbook("crafter")
    from crafter_task.propose import propose_text

    return propose_text
