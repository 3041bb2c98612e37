"""Views of run directories for people: `show` a candidate, `diff` two, and an HTML
`report` with plots. Read-only, through the run-directory schema (`gepa_cli.artifacts`)."""

from gepa_cli.view.diff import ModuleDiff, diff_sides, diff_text, print_diff, resolve
from gepa_cli.view.page import render_report, write_report
from gepa_cli.view.run import BEST, SEED, RunView
from gepa_cli.view.show import (
    candidate_facts,
    frontier_facts,
    frontier_table,
    selected_texts,
    texts_output,
)

__all__ = [
    "BEST",
    "SEED",
    "ModuleDiff",
    "RunView",
    "candidate_facts",
    "diff_sides",
    "diff_text",
    "frontier_facts",
    "frontier_table",
    "print_diff",
    "render_report",
    "resolve",
    "selected_texts",
    "texts_output",
    "write_report",
]
