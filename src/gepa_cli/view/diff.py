"""`gepa-cli diff`: a unified diff of two candidates' texts, per module, with scores.

A side is named by a reference: ``best``, ``seed``, a candidate id, or any of these
after ``RUN_DIR:`` for a candidate of another run (a bare ``RUN_DIR`` is its best).
Equal texts give no output at all, so the exit status says it, as with diff(1).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from gepa_cli.artifacts.replay import ReplayCandidate
from gepa_cli.view.run import BEST, RunView
from gepa_cli.view.show import selected_texts
from gepa_cli.workspace.discover import is_run_dir

NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass
class Side:
    view: RunView
    ref: str
    candidate: ReplayCandidate
    texts: dict[str, str]

    def label(self, qualified: bool) -> str:
        return f"{self.view.run_id}:{self.candidate.id}" if qualified else self.candidate.id

    def scores(self) -> str:
        c = self.candidate
        parts = [f"val {c.val_mean:.4f} on {c.val_count}" if c.val_mean is not None else "val -"]
        heldout = self.view.heldout_means.get(c.id)
        if heldout is not None:
            parts.append(f"heldout {heldout:.4f}")
        return ", ".join(parts)


@dataclass
class ModuleDiff:
    module: str
    lines: list[str]  # unified diff lines, each ending with a newline


def resolve(default: RunView, ref: str) -> Side:
    """The candidate a reference names, in ``default`` or in the run it names."""
    view, candidate_ref = default, ref
    where, colon, rest = ref.rpartition(":")
    if colon and where and is_run_dir(Path(where)):
        view, candidate_ref = RunView.load(where), rest or BEST
    elif is_run_dir(Path(ref)):
        view, candidate_ref = RunView.load(ref), BEST
    return Side(
        view, candidate_ref, view.candidate(candidate_ref), selected_texts(view, candidate_ref)
    )


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def diff_sides(a: Side, b: Side) -> list[ModuleDiff]:
    """One unified diff per module whose texts differ (modules missing on a side are
    empty there); an empty list when every text is equal."""
    qualified = a.view.path.resolve() != b.view.path.resolve()
    modules = list(dict.fromkeys([*a.texts, *b.texts]))
    diffs = []
    for module in modules:
        old, new = a.texts.get(module, ""), b.texts.get(module, "")
        if old == new:
            continue
        lines = []
        for line in difflib.unified_diff(
            _lines(old),
            _lines(new),
            fromfile=f"{a.label(qualified)}/{module}",
            tofile=f"{b.label(qualified)}/{module}",
            fromfiledate=a.scores(),
            tofiledate=b.scores(),
        ):
            if line.endswith("\n"):
                lines.append(line)
            else:  # a last line without its newline, marked as diff(1) marks it
                lines += [line + "\n", NO_NEWLINE]
        diffs.append(ModuleDiff(module, lines))
    return diffs


def diff_text(diffs: list[ModuleDiff]) -> str:
    return "".join(line for d in diffs for line in d.lines)


STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def print_diff(diffs: list[ModuleDiff], console: Console) -> None:
    """Coloured when ``console`` is a terminal; when it is a pipe or a file, exactly the
    unified diff (tabs and all), for tools that read one."""
    if not console.is_terminal:
        console.file.write(diff_text(diffs))
        console.file.flush()
        return
    for diff in diffs:
        for line in diff.lines:
            style = next((s for prefix, s in STYLES if line.startswith(prefix)), "")
            console.print(Text(line, style=style), end="", soft_wrap=True)
