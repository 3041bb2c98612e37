"""What the policy is sent: the checklist inside fixed reviewer instructions, and the
diff with new-file line numbers in a gutter (a model cannot count hunk offsets
reliably, and findings are scored by line)."""

from __future__ import annotations

from . import CATEGORIES
from .diffs import Diff

SEED_CHECKLIST = """\
Review the diff as a careful senior engineer would, and comment only on real problems
in the lines it adds.

- Look for bugs and anything suspicious.
- Check error handling.
- Check database queries.
- Make sure files and connections are cleaned up.
- Watch for concurrency problems.
"""

INSTRUCTIONS = """\
You review code changes. Follow the reviewer's checklist below, then report the defects
you find in the lines the diff adds (marked +). Report each defect once, on the line
where it is, with the line number shown in the diff's gutter.

# Checklist

{checklist}

# Answer

Answer with one JSON object and nothing else:
{{"findings": [{{"file": "<path as in the diff>", "line": <line number>,
"category": "<category>", "message": "<one sentence>", "item": <checklist item number>}}]}}
The category is one of: {categories}. "item" is the number of the bulleted checklist
item (counting from 1) that led to the finding; leave it out if none did. A diff
without defects gets {{"findings": []}}.
"""


def system_prompt(checklist: str) -> str:
    return INSTRUCTIONS.format(checklist=checklist.strip(), categories=", ".join(CATEGORIES))


def numbered_diff(diff: Diff) -> str:
    """The diff with a gutter: the new-file number of every added and context line."""
    out: list[str] = []
    for f in diff.files:
        out.append(f"--- {'a/' + f.old_path if f.old_path else '/dev/null'}")
        out.append(f"+++ b/{f.path}")
        for h in f.hunks:
            header = f"@@ -{h.old_start},{h.old_count} +{h.new_start},{h.new_count} @@"
            out.append(f"{header} {h.section}".rstrip())
            for tag, number, text in h.body:
                gutter = f"{number:5}" if number is not None else " " * 5
                out.append(f"{gutter} {tag} {text}")
    return "\n".join(out)


def user_message(title: str, language: str, diff: Diff) -> str:
    return f"Pull request: {title}\nLanguage: {language}\n\n```diff\n{numbered_diff(diff)}\n```"
