"""The code-review cookbook for the quality suite: its bundled diffs (all of them), its
offline reviewer and grader, and its offline proposer, all in-process.

A rollout is `code_review_task.task.review` with the `offline` policy, exactly what the
cookbook's container answers: the reward is the weighted sum of precision, recall and
quiet, and those three are the rollout's objectives.
"""

from __future__ import annotations

from quality.core import ROOT, Options, ProposeFn, Rollout, Task, run_to_end, use_cookbook


def load_task(options: Options) -> Task:
    use_cookbook("code_review")
    from code_review_task import CANDIDATE_FIELD
    from code_review_task.data import DATA_DIR, load
    from code_review_task.prompt import SEED_CHECKLIST
    from code_review_task.task import review

    dataset = load()
    splits = {s: [e.id for e in dataset.split(s)] for s in ("train", "val", "heldout")}
    rows = {e.id: e.row() for s in ("train", "val", "heldout") for e in dataset.split(s)}
    policy = {"backend": "offline"}

    def rollout(text: str, example_id: str) -> Rollout:
        row = rows[example_id]
        out = run_to_end(review(text, row, policy, dataset=dataset))
        return Rollout(
            example_id=example_id,
            inputs=row,
            output=out.output,
            score=float(out.reward),
            feedback=out.feedback,
            objectives=dict(out.objectives),
        )

    return Task(
        name="code_review",
        component=CANDIDATE_FIELD,
        seed_text=SEED_CHECKLIST,
        train_ids=tuple(splits["train"]),
        val_ids=tuple(splits["val"]),
        heldout_ids=tuple(splits["heldout"]),
        rollout=rollout,
        facts={
            "description": (
                f"The code-review cookbook's bundled diffs ({DATA_DIR.relative_to(ROOT)}, "
                "every diff of each split), its offline reviewer and grader in-process; "
                "score = the cookbook's reward (weighted precision, recall and quiet)."
            ),
        },
    )


def cookbook_proposer() -> ProposeFn:
    """The cookbook's offline proposer (stateless: a function of its request)."""
    use_cookbook("code_review")
    from code_review_task.propose import propose_text

    return propose_text
