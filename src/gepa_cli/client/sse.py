"""Server-sent events, parsed from the lines of a streamed response."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    id: str | None


def messages(lines: Iterable[str]) -> Iterator[Message]:
    """One `Message` per blank-line-terminated block; comments (keepalives) are skipped."""
    event, ident = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data or event != "message":
                yield Message(event, "\n".join(data), ident)
            event, data, ident = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            ident = value
