"""The openai_chat policy's messages: the stable part first, so a server's prompt cache
reads it once per candidate, and the label list once."""

from __future__ import annotations

import re

import pytest
from banking77_task.data import load_sample
from banking77_task.guidance import seed_prompt
from banking77_task.policy import chat_messages

LABELS = load_sample().labels
QUERIES = ("Where is my card?", "I was charged twice for one coffee")


def as_text(messages: list[dict[str, str]]) -> str:
    return "".join(f"<{m['role']}>{m['content']}" for m in messages)


def occurrences(label: str, text: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(label)}(?!\w)", text))


@pytest.mark.parametrize("prompt", [seed_prompt(LABELS), "Classify the customer's message."])
def test_only_the_query_differs_and_comes_last(prompt: str) -> None:
    first, second = (as_text(chat_messages(prompt, q, LABELS)) for q in QUERIES)
    assert first.endswith(QUERIES[0]) and second.endswith(QUERIES[1])
    assert first.removesuffix(QUERIES[0]) == second.removesuffix(QUERIES[1])


@pytest.mark.parametrize("prompt", [seed_prompt(LABELS), "Classify the customer's message."])
def test_every_label_is_listed_once(prompt: str) -> None:
    text = as_text(chat_messages(prompt, "Where is my card?", LABELS))
    assert {label: occurrences(label, text) for label in LABELS} == dict.fromkeys(LABELS, 1)


def test_a_prompt_that_drops_a_label_gets_the_full_list() -> None:
    prompt = seed_prompt(LABELS).replace("- card_arrival: card arrival\n", "")
    messages = chat_messages(prompt, "Where is my card?", LABELS)
    assert messages[0] == {"role": "system", "content": prompt}
    assert occurrences("card_arrival", messages[1]["content"]) == 1
    assert messages[1]["content"].index("card_arrival") < messages[1]["content"].index("Where")
