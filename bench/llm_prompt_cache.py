"""Banking77 classifier calls against the local model server: the prompt layout and the
server's prompt cache.

Sends the same queries, one call at a time, in two layouts of the classifier's
messages, and prints per-call latency and how many prompt tokens the server had to read:

- ``stable_first``: the cookbook's layout (`banking77_task.policy.chat_messages`): the
  candidate prompt, then the instruction, the query last;
- ``query_first``: the layout it replaced, kept here as the peer: the query, then the
  77-label list again after it, so everything after the query is read anew each call.

The first call of each layout reads the whole prompt (it warms the cache) and is
reported apart. Needs the server: it uses the one `make llm-server` left running, or
starts one for the measurement and stops it after.

    .venv/bin/python bench/llm_prompt_cache.py [--calls 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "cookbooks" / "banking77")]

from banking77_task.data import load_sample  # noqa: E402
from banking77_task.guidance import seed_prompt  # noqa: E402
from banking77_task.policy import chat_messages  # noqa: E402

import llm_server  # noqa: E402

Layout = Callable[[str, str, Sequence[str]], list[dict[str, str]]]


def query_first(prompt: str, query: str, labels: Sequence[str]) -> list[dict[str, str]]:
    user = f"Customer message: {query}\n\nAnswer with exactly one of these labels: " + ", ".join(
        labels
    )
    return [{"role": "system", "content": prompt}, {"role": "user", "content": user}]


def measure(
    server: llm_server.Server, layout: Layout, queries: Sequence[str], labels: Sequence[str]
) -> list[tuple[float, int, int, float]]:
    """(seconds, prompt tokens, tokens read past the cache, the server's seconds reading
    the prompt) per call, in order."""
    prompt = seed_prompt(labels)
    out = []
    with httpx.Client(timeout=120) as client:
        for query in queries:
            body = {
                "model": llm_server.MODEL_ALIAS,
                "messages": layout(prompt, query, labels),
                "temperature": 0.0,
                "max_tokens": 32,
            }
            started = time.perf_counter()
            resp = client.post(server.base_url + "/chat/completions", json=body)
            seconds = time.perf_counter() - started
            resp.raise_for_status()
            usage = resp.json()["usage"]
            cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
            prompt_seconds = float(resp.json().get("timings", {}).get("prompt_ms", 0.0)) / 1000
            total = int(usage["prompt_tokens"])
            out.append((seconds, total, total - cached, prompt_seconds))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per layout (+1 warm-up)")
    args = parser.parse_args()
    data = load_sample()
    queries = [ex.text for ex in data.splits["val"][: args.calls + 1]]
    try:
        with llm_server.serving() as server:
            results = {
                name: measure(server, layout, queries, data.labels)
                for name, layout in (("query_first", query_first), ("stable_first", chat_messages))
            }
    except llm_server.LlmServerError as exc:
        print(f"no local model server: {exc}", file=sys.stderr)
        return 1
    print(f"{args.calls} calls per layout after one warm-up call, one at a time, max_tokens 32")
    print(
        "| layout | warm-up s | mean s per call | median s | of which reading the prompt "
        "| prompt tokens | read past cache |"
    )
    print("|---|---|---|---|---|---|---|")
    means = {}
    for name, rows in results.items():
        warm, rest = rows[0], rows[1:]
        means[name] = statistics.mean(r[0] for r in rest)
        print(
            f"| {name} | {warm[0]:.2f} | {means[name]:.3f} | "
            f"{statistics.median(r[0] for r in rest):.3f} | "
            f"{statistics.mean(r[3] for r in rest):.3f} | "
            f"{statistics.mean(r[1] for r in rest):.0f} | "
            f"{statistics.mean(r[2] for r in rest):.0f} |"
        )
    print(
        "query_first / stable_first mean latency: "
        f"{means['query_first'] / means['stable_first']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
