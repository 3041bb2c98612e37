"""The dataset: small diffs written for this project, with labelled defects.

``data/diffs/<id>.diff`` holds each diff (unified format, as ``git diff`` prints it);
``data/labels.json`` lists every diff with its split, language, title and defects
(file, new-file line, category, description). Loading checks everything: the diff
parses, its hunk counts are right, every defect sits on a line the diff adds, the
category is known. ``python -m code_review_task.data`` prints a summary.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from . import CATEGORIES, LANGUAGES
from .diffs import Diff, DiffError, parse_diff
from .scoring import Defect

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "val", "heldout")


class DatasetError(ValueError):
    """The dataset files are inconsistent; the message names the diff and the field."""


@dataclass(frozen=True)
class Example:
    id: str
    split: str
    language: str
    title: str
    diff_text: str
    diff: Diff
    defects: tuple[Defect, ...]

    def row(self) -> dict[str, Any]:
        """What the policy (and the reflective dataset) sees: no labels."""
        return {
            "example_id": self.id,
            "title": self.title,
            "language": self.language,
            "diff": self.diff_text,
        }


@dataclass(frozen=True)
class Dataset:
    examples: tuple[Example, ...]

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def by_id(self, example_id: str) -> Example | None:
        for e in self.examples:
            if e.id == example_id:
                return e
        return None


def _example(entry: dict[str, Any], diff_dir: Path) -> Example:
    eid = str(entry.get("id", ""))
    where = f"labels.json: diff {eid!r}"
    if entry.get("split") not in SPLITS:
        raise DatasetError(f"{where}: split {entry.get('split')!r} is not one of {SPLITS}")
    if entry.get("language") not in LANGUAGES:
        raise DatasetError(f"{where}: language {entry.get('language')!r} not in {LANGUAGES}")
    path = diff_dir / f"{eid}.diff"
    if not path.is_file():
        raise DatasetError(f"{where}: no file {path.name} in {diff_dir}")
    text = path.read_text(encoding="utf-8")
    try:
        diff = parse_diff(text, path.name)
    except DiffError as exc:
        raise DatasetError(str(exc)) from None
    defects = []
    for k, raw in enumerate(entry.get("defects", [])):
        try:
            d = Defect.from_dict(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(
                f"{where}: defect {k} is missing or has a bad field: {exc}"
            ) from None
        if d.category not in CATEGORIES:
            raise DatasetError(f"{where}: defect {k} category {d.category!r} is not known")
        f = diff.file(d.file)
        line = f.line_at(d.line) if f else None
        if line is None or not line.added:
            raise DatasetError(f"{where}: defect {k} ({d.file}:{d.line}) is not an added line")
        defects.append(d)
    return Example(
        eid,
        entry["split"],
        entry["language"],
        str(entry.get("title", "")),
        text,
        diff,
        tuple(defects),
    )


@cache
def load(data_dir: Path = DATA_DIR) -> Dataset:
    try:
        entries = json.loads((data_dir / "labels.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{data_dir / 'labels.json'}: cannot read it: {exc}") from None
    examples = tuple(_example(entry, data_dir / "diffs") for entry in entries)
    ids = Counter(e.id for e in examples)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise DatasetError(f"labels.json: diff ids listed twice: {dup}")
    return Dataset(examples)


def summary(ds: Dataset) -> str:
    lines = []
    for split in SPLITS:
        ex = ds.split(split)
        cats = Counter(d.category for e in ex for d in e.defects)
        langs = Counter(e.language for e in ex)
        clean = sum(1 for e in ex if not e.defects)
        lines.append(
            f"{split:8} {len(ex):3} diffs "
            f"({', '.join(f'{k} {v}' for k, v in sorted(langs.items()))}), "
            f"{clean} clean, {sum(cats.values())} defects: "
            + ", ".join(f"{c} {cats[c]}" for c in CATEGORIES if cats[c])
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        print(summary(load()))
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
