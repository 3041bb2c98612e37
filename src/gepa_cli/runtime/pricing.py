"""What a call cost: tokens times a per-million price, for the proposer and the policy.

A price from the config (``[proposer.prices]``, ``[policy.prices]``) always wins.
Otherwise a few well-known models have a built-in price; any other model's cost stays
unknown (``cost_known=False``), so every report says "unknown" instead of a spend of 0
that nobody measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from gepa_cli.config.models import Prices
from gepa_cli.engine.types import Usage


@dataclass(frozen=True)
class Price:
    input_per_million_usd: float
    output_per_million_usd: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_million_usd
            + completion_tokens * self.output_per_million_usd
        ) / 1_000_000


# OpenAI list prices in USD per million tokens (standard tier, uncached input), as of
# 2025-08. Matched on the exact configured model name: a dated snapshot or a provider
# prefix ("openai/gpt-4o") is not guessed at, because old snapshots were priced
# differently. Prices change; set [proposer.prices] / [policy.prices] to pin what you
# are billed.
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


def price_for(model: str | None, override: Prices | None) -> Price | None:
    if override is not None:
        return Price(override.input_per_million_usd, override.output_per_million_usd)
    return BUILTIN_PRICES.get(model) if model else None


def priced(usage: Usage, price: Price | None) -> Usage:
    """``usage`` with its cost filled in from ``price`` when nobody priced it yet.

    A cost the caller already knows (a container that reports ``cost_usd``) is kept:
    it knows its bill better than a price table does.
    """
    if usage.cost_known or price is None:
        return usage
    cost = price.cost(usage.prompt_tokens, usage.completion_tokens)
    return Usage(usage.prompt_tokens, usage.completion_tokens, cost, cost_known=True)
