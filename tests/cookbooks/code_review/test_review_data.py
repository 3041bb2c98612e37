"""The dataset: enough realistic diffs, labels that sit on the lines they name."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from code_review_task import CATEGORIES, LANGUAGES
from code_review_task.data import DATA_DIR, SPLITS, DatasetError, load
from code_review_task.diffs import DiffError, parse_diff


def test_dataset_size_languages_and_clean_diffs() -> None:
    ds = load()
    assert len(ds.examples) >= 80
    assert {e.language for e in ds.examples} == set(LANGUAGES)
    assert sum(1 for e in ds.examples if not e.defects) >= 10
    # every category is labelled in both languages
    for category in CATEGORIES:
        langs = {e.language for e in ds.examples for d in e.defects if d.category == category}
        assert langs == set(LANGUAGES), category


def test_every_split_has_both_languages_clean_diffs_and_most_categories() -> None:
    ds = load()
    for split in SPLITS:
        ex = ds.split(split)
        assert {e.language for e in ex} == set(LANGUAGES)
        assert any(not e.defects for e in ex)
        assert len({d.category for e in ex for d in e.defects}) == len(CATEGORIES)


def test_diffs_are_small_unified_diffs_with_labels_on_added_lines() -> None:
    for e in load().examples:
        assert e.diff_text.startswith("diff --git ")
        assert 5 <= e.diff.changed_line_count() <= 40, e.id
        for d in e.defects:
            line = e.diff.file(d.file).line_at(d.line)  # type: ignore[union-attr]
            assert line is not None and line.added, (e.id, d)
            assert d.description and len(d.description) < 200
        # the row a policy sees carries the diff, never the labels
        row = e.row()
        assert row["diff"] == e.diff_text and "defects" not in row


def test_labels_json_lists_every_diff_file_once() -> None:
    entries = json.loads((DATA_DIR / "labels.json").read_text(encoding="utf-8"))
    ids = [x["id"] for x in entries]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(p.stem for p in (DATA_DIR / "diffs").glob("*.diff"))
    assert Counter(x["split"] for x in entries).keys() == set(SPLITS)


HUNK = """\
diff --git a/x.py b/x.py
--- a/x.py
+++ b/x.py
@@ -3,2 +3,3 @@ def f():
 a = 1
+b = 2
 c = 3
"""


def test_parser_numbers_new_lines_and_checks_hunk_counts() -> None:
    diff = parse_diff(HUNK)
    f = diff.files[0]
    assert [(x.number, x.added) for x in f.lines()] == [(3, False), (4, True), (5, False)]
    with pytest.raises(DiffError, match=r"hunk header says -2 \+4 lines, the body has -2 \+3"):
        parse_diff(HUNK.replace("+3,3", "+3,4"))
    with pytest.raises(DiffError, match="no file headers"):
        parse_diff("just text\n")


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_a_label_off_the_added_lines_is_a_dataset_error(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    entries = json.loads((data / "labels.json").read_text(encoding="utf-8"))
    victim = next(e for e in entries if e["defects"])
    victim["defects"][0]["line"] = 10_000
    (data / "labels.json").write_text(json.dumps(entries), encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{victim['id']}.*is not an added line"):
        load.__wrapped__(data)


def test_a_broken_diff_file_is_a_dataset_error(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    path = next((data / "diffs").glob("*.diff"))
    path.write_text(path.read_text(encoding="utf-8").replace("@@ -", "@@ -9999,1 @@ -", 1))
    with pytest.raises(DatasetError, match=path.name):
        load.__wrapped__(data)
