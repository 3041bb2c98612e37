"""Property checks: normalization is idempotent and independent of key order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gepa_cli.artifacts.events import is_volatile, normalize_event
from gepa_cli.artifacts.ledger import dumps_line

keys = st.sampled_from(["score", "ts", "latency_ms", "url", "text", "cache_action", "seed"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def _volatile_paths(value: Any) -> bool:
    if isinstance(value, dict):
        return any(is_volatile(k) or _volatile_paths(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_volatile_paths(v) for v in value)
    return False


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(keys, json_values, max_size=5), seq=st.integers(0, 100))
def test_normalize_is_idempotent_and_order_free(data: dict[str, Any], seq: int) -> None:
    event = {"seq": seq, "ts": "t", "run_id": "r", "type": "x", "data": data}
    once = normalize_event(event)
    assert normalize_event(once) == once
    assert not _volatile_paths(once["data"])
    reordered = {k: event[k] for k in reversed(list(event))}
    assert dumps_line(normalize_event(reordered)) == dumps_line(once)
