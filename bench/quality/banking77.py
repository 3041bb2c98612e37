"""Banking77 for the quality pairs: the real data and the cookbook's offline policy.

The rows are the full train CSV split by the cookbook's loader (its fixed seed), val
capped at the first ``val_cap`` rows and heldout at the first ``heldout_cap``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from quality.core import Options, ProposeFn, Rollout, Task, use_cookbook

COMPONENT = "system_prompt"


@dataclass(frozen=True)
class Row:
    query: str
    label: str


def load_rows(options: Options) -> tuple[tuple[str, ...], dict[str, dict[str, Row]], dict]:
    """(labels, split -> example id -> row, facts) of the data folder."""
    use_cookbook("banking77")
    from banking77_task.data import SPLIT_SEED, load_dir, read_csv

    data_dir = options.data_dir
    if not (data_dir / "train.csv").is_file():
        raise SystemExit(f"{data_dir} has no train.csv; pass --data-dir or set BANKING77_DATA_DIR")
    data = load_dir(data_dir)
    caps = {"train": None, "val": options.val_cap, "heldout": options.heldout_cap}
    splits = {
        split: {
            f"{split}:{i}": Row(ex.text, ex.label) for i, ex in enumerate(data.splits[split][:cap])
        }
        for split, cap in caps.items()
    }
    sizes = {split: len(data.splits[split]) for split in caps}
    facts = {
        "description": (
            f"Banking77 from {data_dir} (train.csv {len(read_csv(data_dir / 'train.csv'))} "
            f"rows, split by the cookbook loader with seed {SPLIT_SEED}; val capped from "
            f"{sizes['val']}, heldout from {sizes['heldout']}), the cookbook's offline "
            "policy in-process."
        ),
        "data_dir": str(data_dir),
        "split_seed": SPLIT_SEED,
        "val_before_cap": sizes["val"],
        "heldout_before_cap": sizes["heldout"],
    }
    return data.labels, splits, facts


def predict(prompt: str, row: Row, labels: Sequence[str]) -> str:
    use_cookbook("banking77")
    from banking77_task.policy import offline_classify

    cache_policy_parsing()
    return offline_classify(prompt, row.query, labels)[0]


def cache_policy_parsing() -> None:
    """Let the cookbook's offline policy reuse its parse of a prompt across queries.

    `offline_classify` parses the whole prompt and normalizes every cue on each call;
    a search classifies one candidate's prompt on many queries in a row, so that is
    most of a rollout's cost (about 8x on a 3,000-rollout run). The policy module's
    own names `PromptDoc` and `cue_key` are replaced (in this process only) by cached
    equivalents: the policy reads the parsed document and never changes it, so every
    prediction is the same as without the cache; the proposers use the guidance
    module's own names and are untouched.
    """
    from banking77_task import guidance, policy

    if getattr(policy, "_bench_cached", False):
        return

    class CachedPromptDoc(guidance.PromptDoc):
        @classmethod
        @lru_cache(maxsize=64)
        def parse(cls, text: str) -> guidance.PromptDoc:
            return guidance.PromptDoc.parse(text)

    policy.PromptDoc = CachedPromptDoc  # type: ignore[misc]
    policy.cue_key = lru_cache(maxsize=1 << 16)(guidance.cue_key)
    policy._bench_cached = True  # type: ignore[attr-defined]


def scored(example_id: str, row: Row, predicted: str) -> Rollout:
    """The rollout as the container's offline backend answers it."""
    from banking77_task.policy import reward_info

    info = reward_info(predicted, row.label, row.query)
    score = float(info["outcome_reward"])
    return Rollout(
        example_id=example_id,
        inputs={"query": row.query, "label": row.label},
        output=predicted,
        score=score,
        feedback=str(info["feedback"]),
        objectives={"accuracy": score},
    )


def build_task(name: str, options: Options, rollout_of: Any, extra: dict[str, Any]) -> Task:
    use_cookbook("banking77")
    from banking77_task.guidance import seed_prompt

    labels, splits, facts = load_rows(options)
    rows = {eid: row for split in splits.values() for eid, row in split.items()}

    def rollout(text: str, example_id: str) -> Rollout:
        return rollout_of(text, example_id, rows[example_id], labels)

    if extra.get("description"):
        extra = {**extra, "description": f"{facts['description']} {extra['description']}"}
    return Task(
        name=name,
        component=COMPONENT,
        seed_text=str(seed_prompt(labels)),
        train_ids=tuple(splits["train"]),
        val_ids=tuple(splits["val"]),
        heldout_ids=tuple(splits["heldout"]),
        rollout=rollout,
        facts={**facts, **extra},
    )


def load_task(options: Options) -> Task:
    def rollout(text: str, example_id: str, row: Row, labels: Sequence[str]) -> Rollout:
        return scored(example_id, row, predict(text, row, labels))

    return build_task("banking77", options, rollout, {})


def cookbook_proposer() -> ProposeFn:
    """The cookbook's offline proposer (stateless: a function of its request)."""
    use_cookbook("banking77")
    from banking77_task.propose import propose_text

    return propose_text
