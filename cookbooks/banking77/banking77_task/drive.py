"""Traffic for an online session: Banking77 queries through the official `openai` SDK.

Each request is one customer query (drawn with a fixed seed from a split), sent as an
ordinary chat completion to ``--base-url``; the answer is mapped to a label and
compared with the query's label. When the answer carries an ``x-gepa-rollout-id``
header (a gepa-cli session's proxy), the driver posts the reward (1 or 0) with the same
feedback line the offline container gives. It prints the served accuracy of every
window of requests, so learning shows as it happens.

    python -m banking77_task.drive --base-url http://127.0.0.1:8879/online/sessions/ID/v1 \\
        --api-key-env GEPA_PROXY_KEY --requests 1500 --window 150

Pointed at a real OpenAI-compatible server instead (``--base-url
https://api.openai.com/v1 --api-key-env OPENAI_API_KEY --model gpt-4.1-mini``) the same
driver measures that model as served, with no rewards to post (no rollout ids); give
it the prompt to serve with ``--system-prompt-file``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai

from .data import Example, load_default
from .policy import chat_messages, feedback, normalize_answer

ROLLOUT_HEADER = "x-gepa-rollout-id"
CANDIDATE_HEADER = "x-gepa-candidate-id"


@dataclass
class Window:
    start: int
    requests: int = 0
    correct: int = 0
    candidates: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.correct / self.requests if self.requests else 0.0

    def line(self) -> str:
        served = ", ".join(f"{cid} {n}" for cid, n in sorted(self.candidates.items()))
        return (
            f"requests {self.start + 1:>5}-{self.start + self.requests:<5} "
            f"served accuracy {100 * self.accuracy:5.1f}%   served by {served}"
        )


def rewards_url(base_url: str) -> str:
    """A session's reward route, next to its proxy: .../online/sessions/ID/rewards."""
    return base_url.rstrip("/").removesuffix("/v1") + "/rewards"


def drive(
    client: openai.OpenAI,
    examples: Sequence[Example],
    labels: Sequence[str],
    *,
    requests: int,
    window: int,
    seed: int,
    model: str,
    system_prompt: str | None = None,
    reward_client: httpx.Client | None = None,
    reward_url: str | None = None,
    after_each: Callable[[], None] | None = None,
    out: Callable[[str], None] = print,
) -> list[Window]:
    """Send ``requests`` queries; reward each when the answer names a rollout."""
    rng = random.Random(seed)
    windows: list[Window] = []
    for index in range(requests):
        if index % window == 0:
            windows.append(Window(start=index))
        current = windows[-1]
        example = examples[rng.randrange(len(examples))]
        messages = chat_messages(system_prompt or "", example.text, labels)
        if system_prompt is None:
            messages = messages[1:]  # the proxy puts the candidate's prompt in
        raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
        completion = raw.parse()
        predicted = normalize_answer(completion.choices[0].message.content or "", labels)
        correct = predicted == example.label
        current.requests += 1
        current.correct += correct
        current.candidates[raw.headers.get(CANDIDATE_HEADER, "direct")] += 1
        rollout = raw.headers.get(ROLLOUT_HEADER)
        if rollout and reward_client is not None and reward_url is not None:
            answer = reward_client.post(
                reward_url,
                json={
                    "rollout_id": rollout,
                    "reward": 1.0 if correct else 0.0,
                    "feedback": feedback(predicted, example.label, example.text),
                },
            )
            answer.raise_for_status()
        if after_each is not None:
            after_each()
        if current.requests == window or index == requests - 1:
            out(current.line())
    return windows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Banking77 traffic through an OpenAI-compatible endpoint."
    )
    parser.add_argument("--base-url", required=True, help="A session's proxy .../v1, or any /v1.")
    parser.add_argument("--api-key-env", default=None, help="The env var holding the key to send.")
    parser.add_argument("--model", default="banking77-standin")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--window", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", choices=("train", "val", "heldout"))
    parser.add_argument(
        "--system-prompt-file",
        type=Path,
        default=None,
        help="Send this system prompt (for an upstream without a proxy).",
    )
    args = parser.parse_args(argv)
    key = os.environ.get(args.api_key_env, "") if args.api_key_env else "no-key"
    if args.api_key_env and not key:
        print(f"error: {args.api_key_env} is not set", file=sys.stderr)
        return 2
    data = load_default()
    prompt = (
        args.system_prompt_file.read_text(encoding="utf-8") if args.system_prompt_file else None
    )
    client = openai.OpenAI(base_url=args.base_url, api_key=key, max_retries=2)
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as rewards:
        drive(client, data.splits[args.split], data.labels, requests=args.requests,
              window=args.window, seed=args.seed, model=args.model, system_prompt=prompt,
              reward_client=rewards, reward_url=rewards_url(args.base_url))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
