"""`gepa-cli report`: one self-contained HTML page for one or more runs.

The page embeds plotly.js and every figure's data, so it opens from a file with no
server and no network. It holds, per run: the score over rollouts spent, the lineage
tree, the instance and objective frontiers, the proposals and why each was accepted
or rejected, the budget and cost by boundary, the diff from the seed to the best, and
every candidate's texts; for several runs, their score curves overlaid first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson
import plotly.graph_objects as go
import plotly.offline

from gepa_cli.artifacts.atomic import write_bytes_atomic
from gepa_cli.artifacts.replay import Decision, ReplayCandidate
from gepa_cli.artifacts.schema import ProposalRow
from gepa_cli.errors import ViewError
from gepa_cli.view import figures
from gepa_cli.view.diff import ModuleDiff, Side, diff_sides
from gepa_cli.view.run import BEST, SEED, RunView
from gepa_cli.view.show import frontier_facts

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class Plot:
    """A figure's place in the page: its element id, kind, and plotly JSON."""

    id: str
    kind: str
    figure: go.Figure

    @property
    def data(self) -> Any:
        return orjson.loads(self.figure.to_json())


@dataclass
class RunSection:
    index: int
    view: RunView
    plots: dict[str, Plot | None] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"r{self.index}"

    def anchor(self, candidate_id: str) -> str:
        return f"{self.id}-{candidate_id}"


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def _usd(value: Any, known: bool) -> str:
    if not known:
        return "unknown"
    return f"${value:.4f}" if isinstance(value, (int, float)) else "–"


def inline_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) pieces, word by word: op is ``=``, ``-`` (only in old) or ``+``.

    Changes separated only by whitespace read as one change (all of its old words,
    then all of its new ones) rather than as an interleaving of tiny edits."""
    a, b = TOKEN.findall(old), TOKEN.findall(new)
    pieces: list[tuple[str, str]] = []
    removed: list[str] = []
    added: list[str] = []

    def settle() -> None:
        if removed:
            pieces.append(("-", "".join(removed)))
        if added:
            pieces.append(("+", "".join(added)))
        removed.clear()
        added.clear()

    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        same = "".join(a[i1:i2])
        if op == "equal":
            inside = (removed or added) and index + 1 < len(opcodes)
            if inside and not same.strip():
                removed.append(same)
                added.append(same)
                continue
            settle()
            pieces.append(("=", same))
            continue
        removed.extend(a[i1:i2])
        added.extend(b[j1:j2])
    settle()
    return pieces


def _decisions_by_proposal(decisions: Sequence[Decision]) -> dict[str, Decision]:
    return {pid: d for d in decisions if not d.type.startswith("merge.") for pid in d.ids}


def _proposal_row(p: ProposalRow, decision: Decision | None) -> dict[str, Any]:
    kind = figures.outcome_kind(p.outcome)
    if kind == "failed":
        why = p.outcome  # the proposer's error or rejection, as recorded
    elif kind == "not_evaluated":
        why = "the run ended before its child was evaluated"
    elif decision is not None:
        why = decision.verdict
    else:  # e.g. a racing drop recorded under another proposal of the same child
        why = p.outcome.split(":", 1)[1].strip() if ":" in p.outcome else p.outcome
    usage = p.usage
    return {
        "id": p.proposal_id,
        "iteration": p.iteration,
        "parent_id": p.parent_id,
        "component": p.component,
        "kind": kind,
        "why": why,
        "candidate_id": p.candidate_id,
        "tokens": (usage.prompt_tokens + usage.completion_tokens) if usage else None,
        "cost": _usd(p.cost_usd, usage.cost_known if usage else True),
        "new_text": p.new_text,
    }


class ReportBuilder:
    """Builds the page's context from the runs (`render_report` renders it)."""

    def __init__(self, views: Sequence[RunView]) -> None:
        if not views:
            raise ViewError("no run to report on", hint="pass one or more run directories")
        self.views = list(views)
        self.sections = [RunSection(i, v) for i, v in enumerate(self.views)]

    def build(self) -> dict[str, Any]:
        plots: list[Plot] = []
        overlay = figures.overlay_figure(self.views) if len(self.views) > 1 else None
        overlay_plot = Plot("overlay", "overlay", overlay) if overlay is not None else None
        if overlay_plot is not None:
            plots.append(overlay_plot)
        runs = []
        for section in self.sections:
            runs.append(self._run(section))
            plots += [p for p in section.plots.values() if p is not None]
        return {
            "title": "gepa-cli report: " + ", ".join(v.run_id for v in self.views),
            "runs": runs,
            "overlay": overlay_plot,
            "figures": {p.id: p.data for p in plots},
        }

    def _run(self, section: RunSection) -> dict[str, Any]:
        view, anchor = section.view, section.anchor
        built = {
            "score": figures.score_figure(view, anchor),
            "lineage": figures.lineage_figure(view, anchor),
            "frontier": figures.frontier_figure(view, anchor),
            "objectives": figures.objective_figure(view, anchor),
            "proposals": figures.proposals_figure(view),
            "budget": figures.budget_figure(view),
        }
        for kind, figure in built.items():
            section.plots[kind] = (
                Plot(f"{section.id}-{kind}", kind, figure) if figure is not None else None
            )
        return {
            "id": section.id,
            "view": view,
            "plots": section.plots,
            "summary": self._summary(view),
            "notes": self._notes(view),
            "frontier": frontier_facts(view),
            "proposals": self._proposals(view),
            "merges": [d for d in view.replay.decisions if d.type.startswith("merge.")],
            "usage": self._usage(view),
            "limits": self._limits(view),
            "diff": self._seed_to_best(view),
            "candidates": [self._candidate(view, c) for c in view.candidates],
            "anchor": anchor,
        }

    # -- parts ------------------------------------------------------------------------
    def _summary(self, view: RunView) -> list[tuple[str, str]]:
        seed, best = view.seed, view.best
        heldout = view.heldout_means
        budget = view.budget or {}
        rollouts = (budget.get("rollouts") or {}).get("total", view.replay.rollouts_spent)
        limit = view.limits.get("max_total_rollouts")
        manifest = view.manifest
        known = manifest.cost_known if manifest is not None else bool(budget.get("cost_known", 1))
        cost = manifest.cost_usd if manifest is not None else budget.get("cost_usd")
        return [
            ("state", view.state + (f" ({view.stopped_by})" if view.stopped_by else "")),
            (
                "validation",
                f"seed {_num(seed.val_mean if seed else None)} → best "
                f"{_num(best.val_mean if best else None)}",
            ),
            (
                "heldout",
                f"seed {_num(heldout.get(seed.id) if seed else None)} → best "
                f"{_num(heldout.get(best.id) if best else None)}",
            ),
            ("best candidate", best.id if best is not None else "–"),
            ("candidates", str(len(view.candidates))),
            ("proposals", str(len(view.proposals))),
            ("rollouts", f"{rollouts}" + (f" of {limit}" if limit is not None else "")),
            ("cost recorded", _usd(cost, known)),
        ]

    def _notes(self, view: RunView) -> list[str]:
        notes = []
        if view.error:
            notes.append(f"error: {view.error}")
        if view.state == "running":
            notes.append(
                f"still running: this is the run as of event {view.replay.events}; "
                "rerun the report for a fresh look"
            )
        elif view.state in ("crashed", "incomplete"):
            notes.append(
                f"{view.state}: the run ended without its manifest; resume it with "
                f"`gepa-cli gepa resume {view.path}`"
            )
        if view.replay.partial_last_line is not None:
            notes.append(
                f"events.jsonl line {view.replay.partial_last_line} is half-written and left out"
            )
        for row in view.replay.heldout:
            if row.get("outcome") == "skipped":
                roles = " + ".join(map(str, row.get("roles") or []))
                notes.append(
                    f"heldout not measured for {row.get('candidate_id')} ({roles}): "
                    f"{row.get('reason')}"
                )
        for name, problem in view.files.unreadable.items():
            notes.append(f"{name} is unreadable and left out: {problem}")
        if not view.candidates:
            notes.append("no candidate was validated: there is nothing to plot yet")
        return notes

    def _proposals(self, view: RunView) -> list[dict[str, Any]]:
        decisions = _decisions_by_proposal(view.replay.decisions)
        return [_proposal_row(p, decisions.get(p.proposal_id)) for p in view.proposals]

    def _usage(self, view: RunView) -> list[dict[str, Any]]:
        return [
            {
                "boundary": name,
                "calls": u.calls,
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "cost": _usd(u.cost_usd, u.cost_known),
            }
            for name, u in sorted(view.usage.items())
        ]

    def _limits(self, view: RunView) -> list[dict[str, Any]]:
        budget = view.budget or {}
        rollouts = budget.get("rollouts") or {}
        used = {
            "max_total_rollouts": rollouts.get("total"),
            "max_train_rollouts": rollouts.get("train"),
            "max_heldout_rollouts": rollouts.get("heldout"),
            "max_proposals": budget.get("proposals"),
            "max_tokens": budget.get("tokens"),
            "max_cost_usd": _usd(budget.get("cost_usd"), bool(budget.get("cost_known", True)))
            if budget
            else None,
        }
        limits = view.limits
        return [
            {"name": name, "used": used[name], "limit": limits.get(name, "none")}
            for name in used
            if name in limits or used[name] is not None
        ]

    def _seed_to_best(self, view: RunView) -> list[dict[str, Any]]:
        seed, best = view.seed, view.best
        if seed is None or best is None or seed.id == best.id:
            return []
        a = Side(view, SEED, seed, dict(seed.texts))
        b = Side(view, BEST, best, view.best_texts() or dict(best.texts))
        return [
            {
                "module": d.module,
                "inline": inline_diff(a.texts.get(d.module, ""), b.texts.get(d.module, "")),
                "unified": d.lines,
            }
            for d in diff_sides(a, b)
        ]

    def _candidate(self, view: RunView, c: ReplayCandidate) -> dict[str, Any]:
        parent = view.replay.candidate(c.parents[0]) if c.parents else None
        from_parent: list[ModuleDiff] = []
        if parent is not None:
            from_parent = diff_sides(
                Side(view, parent.id, parent, dict(parent.texts)),
                Side(view, c.id, c, dict(c.texts)),
            )
        return {
            "c": c,
            "roles": view.roles(c),
            "heldout": view.heldout_means.get(c.id),
            "texts": (view.best_texts() or c.texts) if BEST in view.roles(c) else c.texts,
            "from_parent": from_parent,
        }


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gepa_cli.view", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["script_json"] = script_json
    return env


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element (no ``</script>`` can close it)."""
    text = orjson.dumps(value).decode()
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_report(views: Sequence[RunView]) -> str:
    context = ReportBuilder(views).build()
    context["plotly_js"] = plotly.offline.get_plotlyjs()
    context["plot_config"] = PLOT_CONFIG
    return _environment().get_template("report.html.j2").render(**context)


def write_report(run_dirs: Sequence[str | Path], output: Path) -> Path:
    """Render the report of ``run_dirs`` into ``output`` (atomically) and return it."""
    html = render_report([RunView.load(p) for p in run_dirs])
    if output.is_dir():
        raise ViewError(f"{output} is a directory", hint="pass a file name with -o, e.g. -o r.html")
    try:
        write_bytes_atomic(output, html.encode("utf-8"))
        output.chmod(0o644)  # a page to open and share, unlike the run's private files
    except OSError as exc:
        raise ViewError(
            f"cannot write the report to {output}: {exc.strerror}",
            hint="pass a writable path with -o",
        ) from None
    return output
