"""Race scans: mutations of shared state in code that runs concurrently.

A region runs concurrently when it is a Go ``go func`` literal, a Go function started
with ``go name(...)``, or a Python function passed to ``Thread(target=...)``,
``executor.submit`` or ``pool.map``. Python state is shared when it is an attribute of
``self``, a module-level container or a ``global``; Go state when it is not declared in
the region. A write is guarded when a lock is held (Go ``Lock()`` not yet unlocked, a
Python ``with ...lock:`` around it).
"""

from __future__ import annotations

import re

from .diffs import FileDiff, Line
from .scans import added_code
from .source import block_end, code, indent

_CONCURRENT = re.compile(
    r"\bgo\s+(func\b|[\w.]+\()|threading\.|Thread\(|ThreadPoolExecutor|executor\.submit|\.submit\("
    r"|sync\.WaitGroup|errgroup\.|asyncio\.gather|create_task\("
)
_MUTATION = re.compile(
    r"^\s*[\w.]+(\[[^\]]+\])?\s*(\+\+|--|\+=|-=|\*=|\|=)|^\s*[\w.]+\[[^\]]+\]\s*=[^=]"
    r"|^\s*(\w+)\s*=\s*append\(\3\b|\.append\(|\.extend\(|\.update\(|^\s*del\s+\w"
    r"|^\s*self\.\w+\s*=[^=]|^\s*[\w.]+\.\w+\s*=[^=]"
)
_LOCKED_PY = re.compile(r"^\s*(async\s+)?with\s+.*(lock|Lock|mutex|_mu)\b.*:")


def scan_concurrency_any(f: FileDiff) -> list[int]:
    if not any(_CONCURRENT.search(code(x.text, f.language)) for x in f.lines()):
        return []
    return [ln.number for _, ln, c in added_code(f) if _MUTATION.search(c)]


def _go_regions(lines: list[Line]) -> list[tuple[int, int]]:
    """Line index ranges run concurrently: `go func` literals and functions started with `go`."""
    regions = []
    started = set()
    for i, ln in enumerate(lines):
        c = code(ln.text, "go")
        if re.search(r"\bgo\s+func\b", c):
            regions.append((i + 1, block_end(lines, i)))
        started.update(re.findall(r"\bgo\s+(?:\w+\.)?(\w+)\(", c))
    for i, ln in enumerate(lines):
        func = re.match(r"func\s+(\([^)]*\)\s*)?(\w+)\(", ln.text)
        if func and func.group(2) in started:
            regions.append((i + 1, block_end(lines, i)))
    return regions


def _go_locked(lines: list[Line], start: int, at: int) -> bool:
    held = False
    for x in lines[start:at]:
        c = code(x.text, "go")
        if re.search(r"\.(R)?Lock\(\)", c):
            held = True
        elif re.search(r"\.(R)?Unlock\(\)", c) and "defer" not in c:
            held = False
    return held


def _py_regions(lines: list[Line]) -> list[tuple[int, int]]:
    targets = set()
    for ln in lines:
        c = code(ln.text, "python")
        for m in re.finditer(
            r"target=(?:self\.)?(\w+)|\.submit\((?:self\.)?(\w+)|\.map\((?:self\.)?(\w+)", c
        ):
            targets.add(next(g for g in m.groups() if g))
    regions = []
    for i, ln in enumerate(lines):
        func = re.match(r"\s*(?:async\s+)?def\s+(\w+)\(", ln.text)
        if func and func.group(1) in targets:
            regions.append((i + 1, block_end(lines, i)))
    return regions


def scan_unlocked_write(f: FileDiff) -> list[int]:
    lines = list(f.lines())
    hits = []
    if f.language == "go":
        for start, end in _go_regions(lines):
            local: set[str] = set()
            for j in range(start, end):
                ln = lines[j]
                c = code(ln.text, "go")
                for decl in re.finditer(r"(\w+)(?:\s*,\s*\w+)*\s*:=|\bvar\s+(\w+)", c):
                    local.add(decl.group(1) or decl.group(2))
                if not (ln.added and _MUTATION.search(c)):
                    continue
                target = re.match(r"\s*([\w]+)", c)
                name = target.group(1) if target else ""
                if name in local or _go_locked(lines, start, j):
                    continue
                hits.append(ln.number)
    elif f.language == "python":
        shared = set()
        for ln in lines:
            container = re.match(
                r"(\w+)\s*(?::[^=]+)?=\s*(?:[\[{]|(?:dict|list|set|defaultdict|Counter)\()", ln.text
            )
            declared = re.match(r"\s+global\s+([\w, ]+)", ln.text)
            if container:
                shared.add(container.group(1))
            elif declared:
                shared.update(n.strip() for n in declared.group(1).split(","))
        for start, end in _py_regions(lines):
            for j in range(start, end):
                ln = lines[j]
                c = code(ln.text, "python")
                if not (ln.added and _MUTATION.search(c)):
                    continue
                target = re.match(r"\s*(?:del\s+)?([\w]+)", c)
                name = target.group(1) if target else ""
                if name != "self" and name not in shared:
                    continue
                if _py_locked(lines, start, j):
                    continue
                hits.append(ln.number)
    return hits


def _py_locked(lines: list[Line], start: int, at: int) -> bool:
    level = indent(lines[at].text)
    for k in range(at - 1, start - 2, -1):
        text = lines[k].text
        if not text.strip():
            continue
        if indent(text) < level:
            if _LOCKED_PY.match(text):
                return True
            level = indent(text)
    return False


# -- wrong-default ---------------------------------------------------------------------
