"""Scoring a review: parse the policy's answer, match findings to labelled defects,
and turn the match into objectives, a reward and feedback.

Matching rules (the README repeats them):

- A finding matches a labelled defect when it names the same file and category and
  its line is within ``LINE_TOLERANCE`` lines of the defect's line (new-file numbers).
  Matching is one-to-one, closest pairs first (ties: earlier finding, earlier defect).
- A finding within tolerance of a defect that another finding already matched is a
  *duplicate*. Any other unmatched finding is a *false alarm*, including findings on
  files or lines the diff does not show (they are never matched).
- Per diff: ``precision`` = matched / findings (no findings: 1 on a clean diff, 0 on a
  diff with defects); ``recall`` = matched defects / defects (1 on a clean diff);
  ``quiet`` = 1 / (1 + false alarms + duplicates). The reward is
  ``0.4 precision + 0.4 recall + 0.2 quiet``, in [0, 1].
- An answer that is not valid review JSON scores 0 on everything, with feedback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import CATEGORIES
from .diffs import Diff, normalize_path

LINE_TOLERANCE = 2
REWARD_WEIGHTS = {"precision": 0.4, "recall": 0.4, "quiet": 0.2}
MAX_FINDINGS = 50
MAX_MESSAGE_CHARS = 600


class Finding(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    file: str = Field(min_length=1, max_length=300)
    line: int = Field(ge=1)
    category: str
    message: str = Field(min_length=1)
    item: int | None = Field(default=None, ge=1)  # the checklist item it follows, if said

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}; use one of {', '.join(CATEGORIES)}")
        return value

    @field_validator("message")
    @classmethod
    def _short(cls, value: str) -> str:
        # a long-winded finding is still a finding: keep its start
        return value if len(value) <= MAX_MESSAGE_CHARS else value[: MAX_MESSAGE_CHARS - 3] + "..."

    @field_validator("file")
    @classmethod
    def _path(cls, value: str) -> str:
        return normalize_path(value)


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    findings: list[Finding] = Field(max_length=MAX_FINDINGS)


class MalformedAnswer(ValueError):
    """The policy's answer is not review JSON; the message says why, in one line."""


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.S)


def parse_answer(text: str) -> list[Finding]:
    """Findings from a JSON answer (bare, or in a ```json fence); else MalformedAnswer."""
    stripped = text.strip()
    if not stripped:
        raise MalformedAnswer("the answer is empty")
    fenced = _FENCE.findall(stripped)
    candidate = fenced[-1] if fenced else stripped
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"the answer is not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise MalformedAnswer("the answer is JSON nested too deeply") from None
    if isinstance(data, list):
        data = {"findings": data}
    if not isinstance(data, dict):
        raise MalformedAnswer(f"the answer is a JSON {type(data).__name__}, not an object")
    if "findings" not in data:
        raise MalformedAnswer("the answer has no 'findings' list")
    try:
        return Answer.model_validate(data).findings
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        raise MalformedAnswer(f"{where}: {err.get('msg', 'invalid')}") from None


@dataclass(frozen=True)
class Defect:
    file: str
    line: int
    category: str
    description: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Defect:
        return cls(
            normalize_path(str(data["file"])),
            int(data["line"]),
            str(data["category"]),
            str(data["description"]),
        )


@dataclass
class Match:
    matched: list[tuple[Finding, Defect]] = field(default_factory=list)
    missed: list[Defect] = field(default_factory=list)
    duplicates: list[tuple[Finding, Finding]] = field(default_factory=list)  # (dup, original)
    false_alarms: list[tuple[Finding, str]] = field(default_factory=list)  # (finding, why)


def _on_diff(diff: Diff, f: Finding) -> str | None:
    """None when the finding points into the diff, else why not."""
    fd = diff.file(f.file)
    if fd is None:
        return "a file this diff does not change"
    line = fd.line_at(f.line)
    if line is None:
        return "a line outside the diff's hunks"
    return None


def match(findings: Sequence[Finding], defects: Sequence[Defect], diff: Diff) -> Match:
    eligible: list[tuple[int, int, int]] = []  # (distance, finding index, defect index)
    off: dict[int, str] = {}
    for fi, f in enumerate(findings):
        why = _on_diff(diff, f)
        if why is not None:
            off[fi] = why
            continue
        for di, d in enumerate(defects):
            distance = abs(f.line - d.line)
            if f.file == d.file and f.category == d.category and distance <= LINE_TOLERANCE:
                eligible.append((distance, fi, di))
    eligible.sort()
    taken_f: dict[int, int] = {}
    taken_d: dict[int, int] = {}
    for _, fi, di in eligible:
        if fi not in taken_f and di not in taken_d:
            taken_f[fi], taken_d[di] = di, fi
    result = Match()
    for fi, f in enumerate(findings):
        if fi in taken_f:
            result.matched.append((f, defects[taken_f[fi]]))
            continue
        if fi in off:
            result.false_alarms.append((f, f"it points at {off[fi]}"))
            continue
        originals = [taken_d[di] for _, x, di in eligible if x == fi and di in taken_d]
        if originals:
            result.duplicates.append((f, findings[originals[0]]))
            continue
        result.false_alarms.append((f, _why_false(f, defects, diff)))
    result.missed = [d for di, d in enumerate(defects) if di not in taken_d]
    return result


def _why_false(f: Finding, defects: Sequence[Defect], diff: Diff) -> str:
    near = [d for d in defects if d.file == f.file and abs(d.line - f.line) <= LINE_TOLERANCE]
    if near:
        return f"line {near[0].line} has a {near[0].category} defect, not {f.category}"
    fd = diff.file(f.file)
    line = fd.line_at(f.line) if fd else None
    if line is not None and not line.added:
        return "no defect there, and the line is unchanged by this diff"
    return "no defect there"


@dataclass(frozen=True)
class Score:
    reward: float
    objectives: dict[str, float]
    counts: dict[str, int]


def score(m: Match, n_findings: int, n_defects: int) -> Score:
    tp = len(m.matched)
    # no findings: right on a clean diff, no correct finding on one with defects
    precision = tp / n_findings if n_findings else float(n_defects == 0)
    recall = tp / n_defects if n_defects else 1.0
    noise = len(m.false_alarms) + len(m.duplicates)
    objectives = {"precision": precision, "recall": recall, "quiet": 1.0 / (1 + noise)}
    reward = sum(REWARD_WEIGHTS[k] * v for k, v in objectives.items())
    counts = {
        "findings": n_findings,
        "defects": n_defects,
        "matched": tp,
        "missed": len(m.missed),
        "false_alarms": len(m.false_alarms),
        "duplicates": len(m.duplicates),
    }
    return Score(round(reward, 6), {k: round(v, 6) for k, v in objectives.items()}, counts)


FAILED = Score(0.0, {"precision": 0.0, "recall": 0.0, "quiet": 0.0}, {})
