"""How a cost reads to a person: unknown is "unknown", never $0.0000.

A run's cost is unknown when some call had no price (a local model, a container that
reports tokens without a cost). Every human view (run summary, progress line, status
table, replay summary) spells it through `usd`, so none of them shows a spend of 0
that nobody measured.
"""

from __future__ import annotations

UNKNOWN = "unknown"


def usd(value: float | None, known: bool = True) -> str:
    """``$0.0123``; ``unknown`` (with the priced part, when there is one) if not known."""
    if value is None:
        return UNKNOWN
    if known:
        return f"${value:.4f}"
    return f"{UNKNOWN} (${value:.4f} priced)" if value > 0 else UNKNOWN
