"""What a proposer call cost: the completion's ``usage`` times the model's price
(`gepa_cli.runtime.pricing`)."""

from __future__ import annotations

from typing import Any

from gepa_cli.engine.types import Usage
from gepa_cli.runtime.pricing import BUILTIN_PRICES, Price, price_for

__all__ = ["BUILTIN_PRICES", "Price", "price_for", "usage_from_completion"]


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
    return Usage(prompt, completion_tokens, price.cost(prompt, completion_tokens), cost_known=True)
