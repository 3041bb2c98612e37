"""The offline proposer: a deterministic stand-in for an LLM that rewrites the playbook.

Run as ``python -m tblite_task.propose`` with the JSON reflection request on stdin
(``[proposer] backend = "command"``, ``input = "json"``); it prints the new playbook in
one fenced block. It reads only the reflective dataset it is given: for each failed
example, the instruction (``inputs``), the command transcript (``output``) and the
failed checks (``feedback``). Its own knowledge is a general shell phrasebook (`LORE`:
which words of a task call for which command, which error message calls for which fix)
that says nothing about any particular task. From the failures it

1. adds habits the transcript shows were missing: an input named by the task was not
   found (list the files first), a file name was split at a space (quote paths), the
   output's folder did not exist (create it), a script was not executable (chmod), the
   program the task names was never run (run it and read its errors);
2. adds a fix for each error message it knows that the playbook has no fix for;
3. adds, for the task's wording, the recipe of its phrasebook that the playbook lacks,
   keyed by the words the task used, or corrects a recipe whose command differs.

At most `MAX_EDITS` changes per call, so each proposal is a small, testable step. With
nothing to change it prints the text unchanged (recorded as an unchanged proposal).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .agent import LIST_FILES, TaskView
from .playbook import HABIT_TEXT, RUN, Playbook, phrase_position, render_recipe, words

MAX_EDITS = 4
CSV_COLUMN = "NR==1{for(i=1;i<=NF;i++) if($i==col) c=i; next}"


@dataclass(frozen=True)
class Lore:
    phrases: tuple[str, ...]
    stage: str
    text: str


LORE: tuple[Lore, ...] = (
    Lore(("contain", "mention", "with the word"), "filter", "grep -F -- {text}"),
    Lore(
        ("ignoring case", "regardless of case", "case insensitive", "in any case"),
        "filter",
        "grep -i -F -- {text}",
    ),
    Lore(("blank lines", "empty lines"), "filter", "grep -v '^[[:space:]]*$'"),
    Lore(("sort", "in order", "alphabetical"), "sort", "sort"),
    Lore(("largest to smallest", "largest first", "descending"), "sort", "sort -rn"),
    Lore(("smallest to largest", "smallest first", "numerically", "ascending"), "sort", "sort -n"),
    Lore(("unique", "duplicate", "distinct"), "dedupe", "sort -u"),
    Lore(("first", "top"), "limit", "head -n {n}"),
    Lore(("last", "bottom"), "limit", "tail -n {n}"),
    Lore(("how many", "count", "number of lines"), "count", "wc -l"),
    Lore(("number of words", "word count"), "count", "wc -w"),
    Lore(("lowercase", "lower case"), "transform", "tr '[:upper:]' '[:lower:]'"),
    Lore(("uppercase", "upper case"), "transform", "tr '[:lower:]' '[:upper:]'"),
    Lore(("trailing whitespace", "trailing spaces"), "transform", "sed 's/[[:space:]]*$//'"),
    Lore(("leading whitespace", "leading spaces"), "transform", "sed 's/^[[:space:]]*//'"),
    Lore(("column", "field"), "select", "cut -d, -f{n}"),
    Lore(("rename",), RUN, 'for f in {dir}/*{ext}; do mv -- "$f" "${f%{ext}}{ext2}"; done'),
    Lore(("delete", "remove all", "remove every"), RUN, "find . -type f -name '*{ext}' -delete"),
    Lore(("line endings", "crlf"), RUN, "sed -i 's/\\r$//' {src}"),
    Lore(("archive", "tarball"), RUN, "tar czf {dst} {dir}"),
    Lore(("executable",), RUN, "chmod +x {src}"),
    Lore(
        ("sum of", "total of"),
        RUN,
        "awk -F, -v col={text} '" + CSV_COLUMN + " {s+=$c} END{print s}' {src} > {dst}",
    ),
    Lore(
        ("average of", "mean of"),
        RUN,
        "awk -F, -v col={text} '" + CSV_COLUMN + " {s+=$c; n++} END{print s/n}' {src} > {dst}",
    ),
    Lore(
        ("largest value", "maximum", "highest value"),
        RUN,
        "awk -F, -v col={text} '" + CSV_COLUMN + " NR==2||$c>m{m=$c} END{print m}' {src} > {dst}",
    ),
    Lore(
        ("smallest value", "minimum", "lowest value"),
        RUN,
        "awk -F, -v col={text} '" + CSV_COLUMN + " NR==2||$c<m{m=$c} END{print m}' {src} > {dst}",
    ),
    Lore(
        ("whose",),
        RUN,
        "awk -F, -v col={text} -v val={text2} "
        "'NR==1{for(i=1;i<=NF;i++) if($i==col) c=i; print; next} $c==val' {src} > {dst}",
    ),
    Lore(("every object", "each object"), RUN, "jq -r --arg k {text} '.[][$k]' {src} > {dst}"),
    Lore(("script",), RUN, "printf '#!/bin/sh\\n%s\\n' {script} > {dst}"),
)
# error message -> the fix to run (placeholders from the message: {file} {name} {suggestion})
ERROR_LORE: tuple[tuple[str, str], ...] = (
    ("Did you mean", "sed -i 's/\\b{name}\\b/{suggestion}/g' {file}"),
    ("Permission denied", "chmod +x {file}"),
    ("$'\\r'", "sed -i 's/\\r$//' {file}"),
    ("TabError", "sed -i 's/\\t/        /g' {file}"),
)
_MISSING = re.compile(r"^\s*(?:[\w.-]+: )?(?:line \d+: )?(.+?): No such file or directory", re.M)


@dataclass
class Example:
    instruction: str
    transcript: str
    feedback: str


def _examples(records: Sequence[Mapping[str, Any]]) -> list[Example]:
    out = []
    for record in records:
        try:
            failed = float(record.get("score", 0.0)) < 1.0
        except (TypeError, ValueError):
            failed = True
        inputs = record.get("inputs") or {}
        instruction = inputs.get("instruction") if isinstance(inputs, Mapping) else None
        if failed and isinstance(instruction, str):
            out.append(
                Example(
                    instruction, str(record.get("output") or ""), str(record.get("feedback") or "")
                )
            )
    return out


class Editor:
    """Line edits on the playbook text, keeping everything it does not touch."""

    def __init__(self, text: str) -> None:
        self.lines = text.rstrip("\n").splitlines()
        self.edits = 0

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def book(self) -> Playbook:
        return Playbook.parse(self.text)

    def _section_end(self, word: str, title: str) -> int:
        start = next(
            (i for i, x in enumerate(self.lines) if x.startswith("#") and word in x.lower()), None
        )
        if start is None:
            self.lines += ["", f"## {title}", ""]
            return len(self.lines)
        end = next(
            (i for i in range(start + 1, len(self.lines)) if self.lines[i].startswith("#")),
            len(self.lines),
        )
        while end > start + 1 and not self.lines[end - 1].strip():
            end -= 1
        return end

    def add(self, section: str, line: str) -> None:
        at = self._section_end(section.lower(), section)
        self.lines.insert(at, line)
        self.edits += 1

    def replace(self, old_prefix: str, line: str) -> None:
        for i, x in enumerate(self.lines):
            if x.strip().startswith(old_prefix):
                self.lines[i] = line
                self.edits += 1
                return


def _missing_paths(transcript: str) -> list[str]:
    return [m.group(1).strip().strip("'\"") for m in _MISSING.finditer(transcript)]


def _habits_needed(ex: Example, book: Playbook) -> list[str]:
    view = TaskView.parse(ex.instruction)
    needed = []
    operands = view.paths + view.dirs
    for missing in _missing_paths(ex.transcript):
        spaced = [p for p in operands if " " in p and missing in p.split()]
        if spaced:
            needed.append("quote")
        elif (
            "/" in missing
            and any(p == missing for p in operands)
            and "$ mkdir" not in ex.transcript
        ):
            needed.append("mkdir")
        elif (
            any(missing.split("/")[-1] == p.split("/")[-1] for p in operands)
            and f"$ {LIST_FILES}" not in ex.transcript
        ):
            needed.append("look")
    if "is not executable" in ex.feedback:
        needed.append("exec")
    if view.commands and not any(f"$ {c}" in ex.transcript for c in view.commands):
        needed.append("try")
    return [h for h in dict.fromkeys(needed) if h not in book.habits]


def _error_fixes(ex: Example, book: Playbook) -> list[tuple[str, str]]:
    known = {p for r in book.recipes if r.on_error for p in r.phrases}
    return [(pat, fix) for pat, fix in ERROR_LORE if pat in ex.transcript and pat not in known]


def _recipe_edits(ex: Example, book: Playbook) -> list[tuple[str | None, str]]:
    """(line prefix to replace or None to add, new recipe line) for the task's wording."""
    prose = TaskView.parse(ex.instruction).prose
    out: list[tuple[str | None, str]] = []
    for lore in LORE:
        seen = [p for p in lore.phrases if phrase_position(p, prose) >= 0]
        if not seen:
            continue
        # the playbook's recipes of this stage that already answer these words
        covering = [
            r
            for r in book.recipes
            if not r.on_error
            and r.stage == lore.stage
            and any(phrase_position(p, prose) >= 0 for p in r.phrases)
            and any(phrase_position(q, words_of(p)) >= 0 for p in r.phrases for q in lore.phrases)
        ]
        if not covering:
            out.append((None, render_recipe([seen[0]], lore.stage, lore.text)))
            continue
        for r in covering:
            if r.text != lore.text:
                prefix = r.render().split(" -> ")[0]
                out.append((prefix, render_recipe(list(r.phrases), r.stage, lore.text)))
    return out


def words_of(phrase: str) -> list[str]:
    return words(phrase)


def propose_text(current: str, records: Sequence[Mapping[str, Any]]) -> str:
    editor = Editor(current)
    for ex in _examples(records):
        for habit in _habits_needed(ex, editor.book):
            if editor.edits >= MAX_EDITS:
                return editor.text
            editor.add("Habits", f"- {HABIT_TEXT[habit]}")
        for pattern, fix in _error_fixes(ex, editor.book):
            if editor.edits >= MAX_EDITS:
                return editor.text
            editor.add("Recipes", render_recipe([pattern], RUN, fix, on_error=True))
        for prefix, line in _recipe_edits(ex, editor.book):
            if editor.edits >= MAX_EDITS:
                return editor.text
            if prefix is None:
                editor.add("Recipes", line)
            else:
                editor.replace(prefix, line)
    return editor.text


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text.rstrip()}\n{ticks}\n"


def main() -> int:
    raw = sys.stdin.read()
    try:
        request = json.loads(raw)
    except ValueError:
        print(
            'error: expected the JSON reflection request on stdin (set [proposer] input = "json")',
            file=sys.stderr,
        )
        return 2
    if not isinstance(request, dict):
        print("error: the reflection request must be a JSON object", file=sys.stderr)
        return 2
    current = request.get("current_text")
    if not isinstance(current, str):
        component, candidate = request.get("component"), request.get("candidate")
        if isinstance(candidate, dict) and isinstance(candidate.get(component), str):
            current = candidate[component]
        else:
            print("error: the request has no current_text (string)", file=sys.stderr)
            return 2
    dataset = request.get("reflective_dataset", [])
    if not isinstance(dataset, list) or not all(isinstance(r, dict) for r in dataset):
        print("error: reflective_dataset must be a list of objects", file=sys.stderr)
        return 2
    sys.stdout.write(_fence(propose_text(current, dataset)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
