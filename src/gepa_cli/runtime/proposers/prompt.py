"""The reflection prompt: the template, how records are rendered, how answers are read.

The template has exactly two placeholders, ``{current_text}`` and ``{examples}``.
They are substituted in one pass, so braces elsewhere in a template (JSON samples,
say) need no escaping and a placeholder spelled inside the current text is left alone.

The answer is the content of the last complete fenced block. An answer that cannot be
used is rejected with a short reason (the `REJECTIONS` below) and never adopted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gepa_cli.engine.types import ReflectiveRecord
from gepa_cli.errors import ConfigError

CURRENT_TEXT = "current_text"
EXAMPLES = "examples"
PLACEHOLDERS = (CURRENT_TEXT, EXAMPLES)
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

DEFAULT_TEMPLATE = """\
You are revising one text component of an AI system: an instruction, a system prompt \
or a checklist that steers how the system handles its inputs. The system was run with \
the current version of this text on the examples below. Each example shows what went \
in, what the system produced, the score it earned (higher is better) and feedback \
from the evaluator.

# Current text

{current_text}

# Examples, with scores and feedback

{examples}

# What to do

1. Read the examples with low scores first. For each, work out which missing, vague or \
misleading part of the current text let the system go wrong; the feedback often names \
the correct answer or the rule that was broken.
2. Read the examples with high scores and note what the current text already gets \
right, so the revision keeps it.
3. Turn these observations into general guidance: rules, definitions, distinctions \
between easily confused cases, steps, output format requirements. Write guidance that \
would help on new inputs of the same kind, not notes about these particular examples.
4. Write the complete revised text. It replaces the current text as a whole, so it \
must stand on its own: do not refer to "the examples above", the scores or this request.

Answer with the complete revised text inside a single fenced block, opened with ``` and \
closed with ```. Put nothing but the revised text inside the block. If the revised text \
itself contains lines starting with ```, open and close your block with ```` (four \
backticks) instead.
"""


# why an answer cannot be used, and what to do about it (docs/proposers.md)
REJECTIONS = {
    "truncated": "generation stopped at the token limit (finish_reason 'length'); "
    "raise [proposer] max_tokens",
    "empty": "the answer, or its last fenced block, has no text",
    "unclosed_fence": "the model ended its answer inside a fenced block it never closed",
    "no_fence": "the answer has no fenced block",
    "unchanged": "the new text equals the current text",
}
# the finish_reason an OpenAI-compatible server gives an answer cut at max_tokens
LENGTH = "length"


@dataclass(frozen=True)
class ParsedAnswer:
    """The text taken from an answer, or why there is none (exactly one is set)."""

    new_text: str | None
    rejection: str | None


def fence_for(text: str, minimum: int = 3) -> str:
    """A backtick fence longer than any backtick run in ``text``, so it cannot close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(minimum, longest + 1)


def fenced(text: str, info: str = "") -> str:
    fence = fence_for(text)
    return f"{fence}{info}\n{text}\n{fence}"


def _as_json(value: Any) -> str:
    # default=str: inputs come from a container's dataset rows and may hold values
    # JSON cannot spell (dates, decimals); a readable string beats a crash mid-run.
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _format_score(score: float) -> str:
    return f"{score:.4g}"


def render_records(records: Sequence[ReflectiveRecord]) -> str:
    """Numbered markdown sections: id and score, inputs as JSON, output, feedback."""
    if not records:
        return "(no examples were given)"
    sections = []
    for number, record in enumerate(records, start=1):
        output = record.output if isinstance(record.output, str) else _as_json(record.output)
        feedback = record.feedback.strip() or "(no feedback)"
        sections.append(
            "\n".join(
                [
                    f"## Example {number} (id: {record.example_id}, "
                    f"score: {_format_score(record.score)})",
                    "",
                    "Inputs:",
                    fenced(_as_json(dict(record.inputs)), "json"),
                    "",
                    "Output of the system:",
                    fenced(output),
                    "",
                    "Feedback:",
                    fenced(feedback),
                ]
            )
        )
    return "\n\n".join(sections)


def render_prompt(template: str, current_text: str, records: Sequence[ReflectiveRecord]) -> str:
    values = {CURRENT_TEXT: fenced(current_text), EXAMPLES: render_records(records)}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def check_template(template: str, source: str) -> str:
    """Return ``template`` if it has both placeholders, else raise `ConfigError`."""
    for name in PLACEHOLDERS:
        if "{" + name + "}" not in template:
            raise ConfigError(
                f"proposer prompt template {source} has no {{{name}}} placeholder",
                hint="a template needs both {current_text} and {examples}",
                path=source,
                missing=name,
            )
    return template


def load_template(path: Path | None, base_dir: Path) -> str:
    """The default template, or the file at ``path`` (relative to ``base_dir``), validated."""
    if path is None:
        return DEFAULT_TEMPLATE
    resolved = path if path.is_absolute() else base_dir / path
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"proposer prompt template {resolved} cannot be read ({exc.strerror or exc})",
            hint="fix [proposer] prompt_template (a path relative to the config file)",
            path=str(resolved),
        ) from exc
    return check_template(text, str(resolved))


_OPEN = re.compile(r"^ {0,3}(`{3,})([^`]*)$")


def _closes(line: str, fence_length: int) -> bool:
    match = re.fullmatch(r" {0,3}(`{3,})\s*", line)
    return match is not None and len(match.group(1)) >= fence_length


def fenced_blocks(answer: str) -> tuple[list[str], bool]:
    """The complete fenced blocks of ``answer`` and whether a fence is left open.

    Follows the CommonMark rule that a block closes only on a bare fence at least as
    long as its opening one, so a longer outer fence can carry inner ``` lines.
    """
    blocks: list[str] = []
    open_length = 0
    body: list[str] = []
    for line in answer.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if open_length:
            if _closes(line, open_length):
                blocks.append("\n".join(body))
                open_length, body = 0, []
            else:
                body.append(line)
            continue
        match = _OPEN.match(line)
        if match:
            open_length = len(match.group(1))
    return blocks, open_length > 0


def parse_answer(answer: str, current_text: str, finish_reason: str | None = None) -> ParsedAnswer:
    """The new text in ``answer``, or why there is none. ``finish_reason`` is why the
    model stopped, when the backend says (``"length"``: it hit max_tokens)."""
    # an answer cut at the token limit is not trusted, whatever it holds so far: its
    # last complete block may be a quote of the old text, not the proposal
    if finish_reason == LENGTH:
        return ParsedAnswer(None, "truncated")
    if not answer.strip():
        return ParsedAnswer(None, "empty")
    blocks, left_open = fenced_blocks(answer)
    # the model stopped on its own inside an open block: an earlier complete block is
    # more likely a quote of the old text than the proposal, so none is trusted
    if left_open:
        return ParsedAnswer(None, "unclosed_fence")
    if not blocks:
        return ParsedAnswer(None, "no_fence")
    lines = blocks[-1].split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    # leading indentation of the first real line is kept: it may be part of the text
    new_text = "\n".join(lines).rstrip()
    if not new_text.strip():
        return ParsedAnswer(None, "empty")
    if new_text.strip() == current_text.strip():
        return ParsedAnswer(None, "unchanged")
    return ParsedAnswer(new_text, None)


def records_as_json(records: Sequence[ReflectiveRecord]) -> list[dict[str, Any]]:
    """The reflective dataset as plain JSON data (for the command backend's JSON input)."""
    return [
        {
            "example_id": record.example_id,
            "inputs": _plain(dict(record.inputs)),
            "output": _plain(record.output),
            "score": record.score,
            "feedback": record.feedback,
        }
        for record in records
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = dict(value)
    if isinstance(value, (dict, list, tuple)):
        return json.loads(json.dumps(value, default=str))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
