"""Small, language-aware helpers over source lines: comments, string literals, calls,
indentation blocks. Enough for pattern detectors; not a parser."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .diffs import Line

# A string literal with its prefix: Python r/b/f/u prefixes, Go raw `...` strings.
STRING = re.compile(
    r"""(?P<prefix>\b[rRbBfFuU]{1,2})?(?P<q>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"""
)


def code(text: str, language: str | None) -> str:
    """The line without its trailing comment (comment markers inside strings are kept)."""
    marker = "//" if language == "go" else "#"
    out = []
    i = 0
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
            out.append(ch)
        elif text.startswith(marker, i):
            break
        else:
            out.append(ch)
        i += 1
    return "".join(out).rstrip()


def is_blank(text: str, language: str | None) -> bool:
    return not code(text, language).strip()


def literals(text: str) -> list[tuple[str, str]]:
    """(prefix, body with quotes) of each string literal on the line."""
    return [(m.group("prefix") or "", m.group("q")) for m in STRING.finditer(text)]


def indent(text: str) -> int:
    expanded = text.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def call_text(lines: Sequence[Line], start: int) -> str:
    """The text of the call starting on ``lines[start]``, joined until parens balance."""
    depth = 0
    parts = []
    for line in lines[start : start + 12]:
        parts.append(line.text.strip())
        for ch in line.text:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        if depth <= 0:
            break
    return " ".join(parts)


def block_end(lines: Sequence[Line], start: int) -> int:
    """Index after the indented block opened by ``lines[start]`` (Python or Go braces)."""
    base = indent(lines[start].text)
    for j in range(start + 1, len(lines)):
        text = lines[j].text
        if not text.strip():
            continue
        if indent(text) <= base:
            # Go's closing brace belongs to the block
            return j + 1 if text.strip().startswith("}") else j
    return len(lines)
