"""What a proposer call cost: tokens times a per-million price.

A price from the config always wins. Otherwise a few well-known models have a built-in
price; any other model gets ``cost_known=False`` so the manifest says "cost unknown"
instead of reporting a spend of 0 that nobody measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gepa_cli.config.models import Prices
from gepa_cli.engine.types import Usage


@dataclass(frozen=True)
class Price:
    input_per_million_usd: float
    output_per_million_usd: float


# OpenAI list prices in USD per million tokens (standard tier, uncached input), as of
# 2025-08. Matched on the exact configured model name: a dated snapshot or a provider
# prefix ("openai/gpt-4o") is not guessed at, because old snapshots were priced
# differently. Prices change; set [proposer.prices] to pin what you are billed.
BUILTIN_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
}


def price_for(model: str, override: Prices | None) -> Price | None:
    if override is not None:
        return Price(override.input_per_million_usd, override.output_per_million_usd)
    return BUILTIN_PRICES.get(model)


def _count(usage: dict[str, Any], key: str) -> int | None:
    value = usage.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return int(value)


def usage_from_completion(completion: dict[str, Any], price: Price | None) -> Usage:
    """Usage of one chat completion from its ``usage`` object and ``price``.

    Without a ``usage`` object (some local servers omit it) the tokens are unknown,
    so the cost is unknown too, even for a priced model.
    """
    raw = completion.get("usage")
    usage = raw if isinstance(raw, dict) else {}
    prompt = _count(usage, "prompt_tokens")
    completion_tokens = _count(usage, "completion_tokens")
    if prompt is None or completion_tokens is None:
        return Usage(prompt or 0, completion_tokens or 0, 0.0, cost_known=False)
    if price is None:
        return Usage(prompt, completion_tokens, 0.0, cost_known=False)
    cost = (
        prompt * price.input_per_million_usd + completion_tokens * price.output_per_million_usd
    ) / 1_000_000
    return Usage(prompt, completion_tokens, cost, cost_known=True)
