"""A support-reply task as a gepa-cli container, written with the task-app kit.

The optimized text is a reply playbook: lines such as ``- refund: apologize, refund
within 5 days``. A ticket lists the points a good reply must make; the offline policy
drafts a reply from the playbook lines whose topic the ticket mentions, and the reward
is the share of required points the reply makes. Swap `draft_reply` for a model call
to optimize a real assistant (see docs/containers.md).

    gepa-cli gepa run --config examples/support_replies/gepa.toml   # in-process
    python -m support_task --port 8000                               # standalone
"""

from __future__ import annotations

from gepa_cli.taskapp import Module, Rollout, RolloutResult, TaskApp

TOPICS = {  # topic -> the points every reply about it must make
    "refund": ["apologize", "refund within 5 days", "order number"],
    "shipping": ["tracking link", "delivery estimate"],
    "password": ["reset link", "never share your password"],
    "billing": ["invoice copy", "apologize", "billing team"],
}
OPENERS = ["Hi, about my {t}:", "Question on {t}.", "Urgent {t} issue!", "Help with {t} please"]
TICKETS = [(opener.format(t=topic), topic) for opener in OPENERS for topic in TOPICS]
SPLITS = {"train": 12, "test": 4}  # train: the first 12 tickets, test: the last 4
SEED = "You answer customer tickets politely.\n- refund: apologize\n- shipping: tracking link"


def ticket(split: str, seed: int) -> dict[str, object]:
    message, topic = TICKETS[seed if split == "train" else 12 + seed]
    return {"message": message, "topic": topic, "must_mention": TOPICS[topic]}


def draft_reply(playbook: str, message: str) -> str:
    """The offline stand-in for a model: the playbook lines whose topic the ticket names."""
    lines = [line[2:] for line in playbook.splitlines() if line.startswith("- ")]
    return " ".join(text for text in lines if text.split(":")[0].strip() in message.lower())


async def rollout(r: Rollout) -> RolloutResult:
    reply = draft_reply(r.candidate["playbook"], r.row["message"])
    r.step(observation=r.row["message"], action=reply)
    missing = [point for point in r.row["must_mention"] if point not in reply]
    score = 1 - len(missing) / len(r.row["must_mention"])
    feedback = f"Missing for {r.row['topic']}: {', '.join(missing)}." if missing else "Complete."
    return RolloutResult(
        reward=score, objectives={"coverage": score}, feedback=feedback, output=reply
    )


app = TaskApp(
    name="support_replies",
    description="Write support replies that make every required point.",
    modules=[Module(module_id="replier", field="playbook", seed=SEED, objective="coverage")],
    splits=SPLITS,
    row=ticket,
    rollout=rollout,
    max_rollout_seconds=10.0,
)

if __name__ == "__main__":
    app.main()
