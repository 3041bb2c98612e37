"""A strict reader of unified diffs (``git diff`` output), as reviewers see them.

Each file of a diff becomes a :class:`FileDiff` holding its hunks with new-file line
numbers: the lines the diff adds, and the unchanged context lines around them. Line
numbers in findings and labels always mean new-file lines. Hunk headers are checked
against their bodies, so a hand-edited diff with a wrong count is an error, not a
silently shifted line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_EXTENSIONS = {".py": "python", ".go": "go"}


class DiffError(ValueError):
    """A diff that does not parse, with where and what."""


@dataclass(frozen=True)
class Line:
    number: int  # new-file line number
    text: str
    added: bool  # False: an unchanged context line


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str
    lines: list[Line] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    body: list[tuple[str, int | None, str]] = field(default_factory=list)  # (tag, number, text)


@dataclass
class FileDiff:
    path: str  # the new path ("b/..." without the prefix); the old one for a deletion
    old_path: str | None  # None for a new file
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def language(self) -> str | None:
        for ext, lang in _EXTENSIONS.items():
            if self.path.endswith(ext):
                return lang
        return None

    def lines(self) -> Iterator[Line]:
        """Every new-side line of every hunk, in order."""
        for hunk in self.hunks:
            yield from hunk.lines

    def added(self) -> list[Line]:
        return [line for line in self.lines() if line.added]

    def line_at(self, number: int) -> Line | None:
        for line in self.lines():
            if line.number == number:
                return line
        return None


@dataclass
class Diff:
    files: list[FileDiff]

    def file(self, path: str) -> FileDiff | None:
        wanted = normalize_path(path)
        for f in self.files:
            if f.path == wanted:
                return f
        return None

    def changed_line_count(self) -> int:
        """Added plus removed lines: the size of a change as review tools count it."""
        return sum(1 for f in self.files for h in f.hunks for tag, _, _ in h.body if tag != " ")


def normalize_path(path: str) -> str:
    """``b/app/db.py``, ``./app/db.py`` and ``app/db.py`` name the same file."""
    path = path.strip().replace("\\", "/")
    if path.startswith(("a/", "b/")):
        path = path[2:]
    while path.startswith("./"):
        path = path[2:]
    return path


def _path_of(header: str, prefix: str) -> str | None:
    value = header[len(prefix) :].split("\t", 1)[0].strip()
    return None if value == "/dev/null" else normalize_path(value)


def parse_diff(text: str, where: str = "diff") -> Diff:
    """Parse ``text``; raise :class:`DiffError` naming ``where`` and the line on error."""
    lines = text.splitlines()
    files: list[FileDiff] = []
    current: FileDiff | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- "):
            if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
                raise DiffError(f"{where}:{i + 1}: '---' header without a '+++' line after it")
            old, new = _path_of(line, "--- "), _path_of(lines[i + 1], "+++ ")
            if new is None and old is None:
                raise DiffError(f"{where}:{i + 1}: both sides of the file are /dev/null")
            current = FileDiff(path=new or old or "", old_path=old)
            files.append(current)
            i += 2
            continue
        m = _HUNK.match(line)
        if m:
            if current is None:
                raise DiffError(f"{where}:{i + 1}: hunk before any '---'/'+++' file header")
            i = _read_hunk(lines, i, m, current, where)
            continue
        # git's extended headers and free text before the first file are allowed
        if (
            current is not None
            and current.hunks
            and line.strip()
            and not line.startswith(
                ("diff --git ", "index ", "new file mode", "deleted file mode", "similarity ")
            )
        ):
            raise DiffError(f"{where}:{i + 1}: unexpected line outside a hunk: {line[:40]!r}")
        i += 1
    if not files:
        raise DiffError(f"{where}: no file headers ('--- a/...', '+++ b/...')")
    for f in files:
        if not f.hunks:
            raise DiffError(f"{where}: file {f.path} has no hunks")
    return Diff(files)


def _read_hunk(lines: list[str], i: int, m: re.Match[str], f: FileDiff, where: str) -> int:
    old_start, new_start = int(m.group(1)), int(m.group(3))
    old_count = int(m.group(2)) if m.group(2) is not None else 1
    new_count = int(m.group(4)) if m.group(4) is not None else 1
    hunk = Hunk(old_start, old_count, new_start, new_count, m.group(5).strip())
    header_at = i + 1
    number = new_start
    old_seen = new_seen = 0
    i += 1
    while i < len(lines) and (old_seen < old_count or new_seen < new_count):
        body = lines[i]
        tag, text = body[:1], body[1:]
        if tag == "+":
            hunk.lines.append(Line(number, text, True))
            hunk.body.append(("+", number, text))
            number += 1
            new_seen += 1
        elif tag == " " or body == "":
            hunk.lines.append(Line(number, text, False))
            hunk.body.append((" ", number, text))
            number += 1
            new_seen += 1
            old_seen += 1
        elif tag == "-":
            hunk.removed.append(text)
            hunk.body.append(("-", None, text))
            old_seen += 1
        elif tag == "\\":
            pass  # "\ No newline at end of file"
        else:
            break
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):
        i += 1
    if (old_seen, new_seen) != (old_count, new_count):
        raise DiffError(
            f"{where}:{header_at}: hunk header says -{old_count} +{new_count} lines, "
            f"the body has -{old_seen} +{new_seen}"
        )
    previous = f.hunks[-1].lines if f.hunks else []
    if previous and new_start <= previous[-1].number:
        raise DiffError(f"{where}:{header_at}: hunks of {f.path} overlap or are out of order")
    f.hunks.append(hunk)
    return i
