"""Scoring on hand-made cases: tolerance, duplicates, unchanged lines, malformed answers."""

from __future__ import annotations

import json

import pytest
from code_review_task.data import load
from code_review_task.diffs import parse_diff
from code_review_task.scoring import (
    LINE_TOLERANCE,
    Defect,
    Finding,
    MalformedAnswer,
    match,
    parse_answer,
    score,
)
from code_review_task.task import grade

# new-file lines 10..20: 10-12 unchanged, 13-17 added, 18-20 unchanged
DIFF = parse_diff(
    """\
diff --git a/app/db.py b/app/db.py
--- a/app/db.py
+++ b/app/db.py
@@ -10,6 +10,11 @@ class Repo:
     def get(self, key):
         return self._rows.get(key)

+    def find(self, name):
+        cur = self._conn.cursor()
+        cur.execute(f"SELECT id FROM t WHERE name = '{name}'")
+        return cur.fetchall()
+
     def close(self):
         self._conn.close()

"""
)
SQL = Defect("app/db.py", 15, "sql-injection", "name interpolated into the SQL")
LEAK = Defect("app/db.py", 14, "resource-leak", "cursor never closed")


def f(line: int, category: str = "sql-injection", file: str = "app/db.py") -> Finding:
    return Finding(file=file, line=line, category=category, message="m")


def test_exact_line_matches() -> None:
    m = match([f(15)], [SQL], DIFF)
    assert [(x.line, d.line) for x, d in m.matched] == [(15, 15)]
    s = score(m, 1, 1)
    assert s.objectives == {"precision": 1.0, "recall": 1.0, "quiet": 1.0}
    assert s.reward == 1.0


@pytest.mark.parametrize("line", [15 - LINE_TOLERANCE, 14, 16, 15 + LINE_TOLERANCE])
def test_within_tolerance_matches(line: int) -> None:
    assert len(match([f(line)], [SQL], DIFF).matched) == 1


def test_outside_tolerance_is_a_false_alarm_and_a_miss() -> None:
    m = match([f(15 + LINE_TOLERANCE + 1)], [SQL], DIFF)
    assert not m.matched and m.missed == [SQL] and len(m.false_alarms) == 1
    s = score(m, 1, 1)
    assert s.objectives == {"precision": 0.0, "recall": 0.0, "quiet": 0.5}
    assert s.reward == pytest.approx(0.1)


def test_category_and_file_must_agree() -> None:
    m = match([f(15, "resource-leak"), f(15, file="app/other.py")], [SQL], DIFF)
    assert not m.matched and m.missed == [SQL]
    whys = [why for _, why in m.false_alarms]
    assert whys[0] == "line 15 has a sql-injection defect, not resource-leak"
    assert whys[1] == "it points at a file this diff does not change"


def test_duplicates_count_as_noise_not_as_hits() -> None:
    findings = [f(16), f(15), f(15), f(14)]
    m = match(findings, [SQL], DIFF)
    assert len(m.matched) == 1 and m.matched[0][0].line == 15  # the closest one wins
    assert len(m.duplicates) == 3 and not m.false_alarms
    s = score(m, len(findings), 1)
    assert s.objectives["precision"] == 0.25 and s.objectives["recall"] == 1.0
    assert s.objectives["quiet"] == 0.25  # 1 / (1 + 3)


def test_matching_is_one_to_one_closest_first() -> None:
    # two defects two lines apart, two findings: each defect gets the nearest finding
    a = Defect("app/db.py", 14, "sql-injection", "a")
    b = Defect("app/db.py", 16, "sql-injection", "b")
    m = match([f(16), f(14)], [a, b], DIFF)
    assert sorted((x.line, d.line) for x, d in m.matched) == [(14, 14), (16, 16)]


def test_findings_on_unchanged_lines() -> None:
    lines = {x.number: x.added for x in DIFF.files[0].lines()}
    assert not lines[11] and lines[13] and not lines[19]
    top = Defect("app/db.py", 13, "sql-injection", "x")
    # an unchanged line next to a defect still points at it (within tolerance) ...
    assert len(match([f(11)], [top], DIFF).matched) == 1
    # ... an unchanged line away from any defect is a false alarm that says so ...
    m = match([f(19, "resource-leak")], [SQL], DIFF)
    assert m.false_alarms[0][1] == "no defect there, and the line is unchanged by this diff"
    # ... and a line outside every hunk never matches, even within tolerance of a defect
    m = match([f(9)], [Defect("app/db.py", 11, "sql-injection", "x")], DIFF)
    assert not m.matched and m.false_alarms[0][1] == "it points at a line outside the diff's hunks"


def test_clean_diff_scores() -> None:
    silent = score(match([], [], DIFF), 0, 0)
    assert silent.objectives == {"precision": 1.0, "recall": 1.0, "quiet": 1.0}
    assert silent.reward == 1.0
    noisy = score(match([f(14), f(15)], [], DIFF), 2, 0)
    assert noisy.objectives["precision"] == 0.0 and noisy.objectives["recall"] == 1.0
    assert noisy.objectives["quiet"] == pytest.approx(1 / 3)
    # nothing found on a diff with defects: no precision to speak of, and no recall
    missed = score(match([], [SQL, LEAK], DIFF), 0, 2)
    assert missed.objectives == {"precision": 0.0, "recall": 0.0, "quiet": 1.0}
    assert missed.reward == pytest.approx(0.2)


def test_parse_answer_accepts_a_fence_a_list_and_path_prefixes() -> None:
    one = {"file": "b/app/db.py", "line": 15, "category": "SQL-Injection", "message": "x"}
    fenced = f"Here you go:\n```json\n{json.dumps({'findings': [one]})}\n```\n"
    for text in (json.dumps({"findings": [one]}), fenced, json.dumps([one])):
        (finding,) = parse_answer(text)
        assert (finding.file, finding.line, finding.category) == ("app/db.py", 15, "sql-injection")
    assert parse_answer('{"findings": []}') == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("I found an SQL injection on line 15.", "not JSON"),
        ('{"comments": []}', "no 'findings' list"),
        ('"findings"', "not an object"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"findings": [{"file": "a.py", "line": 0, "category": "race", "message": "m"}]}', "line"),
        (
            '{"findings": [{"file": "a.py", "line": 3, "category": "style", "message": "m"}]}',
            "unknown category",
        ),
        ('{"findings": [{"file": "a.py", "line": 3, "category": "race"}]}', "message"),
        (
            json.dumps(
                {"findings": [{"file": "a", "line": 1, "category": "race", "message": "m"}] * 51}
            ),
            "findings",
        ),
    ],
)
def test_malformed_answers_raise_one_clear_reason(answer: str, reason: str) -> None:
    with pytest.raises(MalformedAnswer, match=reason):
        parse_answer(answer)


def test_malformed_policy_output_is_a_scored_failure_with_feedback() -> None:
    example = next(e for e in load().examples if len(e.defects) == 2)
    outcome = grade("- anything", example, "Looks good to me!")
    assert outcome.reward == 0.0
    assert outcome.objectives == {"precision": 0.0, "recall": 0.0, "quiet": 0.0}
    assert outcome.feedback.startswith(
        "Reward 0.00: the answer could not be scored: the answer is not JSON"
    )
    assert outcome.feedback.count("\nMissed: ") == 2
    assert outcome.output["malformed"].startswith("the answer is not JSON")


def test_grade_feedback_names_hits_misses_and_false_alarms() -> None:
    example = load().by_id("py-invoice-pdf")
    assert example is not None
    checklist = (
        "- command-injection: shell command string built with an f-string\n"
        "- Check error handling.\n"
    )
    cmd = next(d for d in example.defects if d.category == "command-injection")
    answer = {
        "findings": [
            {
                "file": cmd.file,
                "line": cmd.line,
                "category": cmd.category,
                "message": "x",
                "item": 1,
            },
            {"file": cmd.file, "line": 1, "category": "unchecked-error", "message": "y", "item": 2},
        ]
    }
    out = grade(checklist, example, json.dumps(answer))
    lines = out.feedback.splitlines()
    assert lines[0].startswith("Reward ") and "1 false alarm(s)" in lines[0]
    assert lines[1] == (
        f"Found: command-injection at billing/pdf.py:{cmd.line} [checklist item 1 "
        f'"command-injection: shell command string built with an f-string"]: {cmd.description}'
    )
    assert lines[2].startswith("Missed: resource-leak at billing/pdf.py:")
    assert lines[3] == (
        'False alarm: unchecked-error at billing/pdf.py:1 [checklist item 2 "Check error '
        'handling."]: no defect there'
    )
    assert out.objectives == {"precision": 0.5, "recall": 0.5, "quiet": 0.5}
    assert out.output["counts"]["false_alarms"] == 1


def test_a_long_message_is_cut_not_refused() -> None:
    one = {"file": "a.py", "line": 3, "category": "race", "message": "x" * 5000}
    (finding,) = parse_answer(json.dumps({"findings": [one]}))
    assert len(finding.message) == 600 and finding.message.endswith("...")
