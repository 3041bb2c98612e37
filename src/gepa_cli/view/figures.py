"""The report's charts, as plotly figures built from a `RunView`.

Each function returns a figure, or None when the run has nothing to draw yet (a run
that failed before its seed was validated). plotly.js draws them in the page; every
point carries the candidate id (``customdata``) so a click opens that candidate's
texts, and so a test can match what was drawn against the run's ledgers.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

from gepa_cli.artifacts.replay import ReplayCandidate
from gepa_cli.view.lineage import tree_layout
from gepa_cli.view.run import RunView

Anchor = Callable[[str], str]  # candidate id -> the id of its element in the page

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
SEED_COLOR, BEST_COLOR, MERGE_COLOR = "#7f7f7f", "#d62728", "#ff7f0e"
FONT = "-apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"


def _figure(title: str | None = None, height: int = 360) -> go.Figure:
    # plotly.js's own defaults as the template: a named Python-side template costs a
    # deep copy per figure and kilobytes in every figure's JSON
    return go.Figure(
        layout={
            "template": "none",
            "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}}
            if title
            else None,
            "height": height,
            "margin": {"l": 60, "r": 20, "t": 40 if title else 16, "b": 50},
            "font": {"family": FONT, "size": 12},
            "colorway": list(COLORS),
            "legend": {"orientation": "h", "y": -0.22},
            "hoverlabel": {"align": "left"},
        }
    )


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _hover(view: RunView, c: ReplayCandidate) -> str:
    """A candidate's hover label (plotly's small HTML subset; its texts escaped)."""
    heldout = view.heldout_means.get(c.id)
    parents = f" from {', '.join(c.parents)}" if c.parents else ""
    lines = [
        f"<b>{c.id}</b> ({c.origin}{parents})",
        f"val {c.val_mean:.4f} on {c.val_count}" if c.val_mean is not None else "not validated",
    ]
    if heldout is not None:
        lines.append(f"heldout {heldout:.4f}")
    lines += [f"{module}: {html.escape(_short(text))}" for module, text in c.texts.items()]
    return "<br>".join(lines)


def _best_curve(view: RunView) -> tuple[list[int], list[float]]:
    history = view.replay.best_history
    if not history:
        return [], []
    xs = [b.rollouts for b in history]
    ys = [b.val_mean for b in history]
    if view.replay.rollouts_spent > xs[-1]:  # the best held until the last rollout
        xs.append(view.replay.rollouts_spent)
        ys.append(ys[-1])
    return xs, ys


def score_figure(view: RunView, anchor: Anchor) -> go.Figure | None:
    """Best and seed score over rollouts spent: validation, and heldout where measured."""
    validated = [c for c in view.validated if c.validated_at is not None]
    if not validated:
        return None
    end = view.replay.rollouts_spent
    figure = _figure()
    xs, ys = _best_curve(view)
    figure.add_scatter(
        x=xs, y=ys, name="best (validation)", mode="lines", line_shape="hv",
        line={"color": BEST_COLOR, "width": 3}, meta="best_val",
    )  # fmt: skip
    seed = view.seed
    if seed is not None and seed.val_mean is not None:
        figure.add_scatter(
            x=[seed.validated_at, end], y=[seed.val_mean, seed.val_mean],
            name="seed (validation)", mode="lines",
            line={"color": SEED_COLOR, "dash": "dash"}, meta="seed_val",
        )  # fmt: skip
    figure.add_scatter(
        x=[c.validated_at for c in validated],
        y=[c.val_mean for c in validated],
        customdata=[anchor(c.id) for c in validated],
        text=[c.id for c in validated],
        hovertext=[_hover(view, c) for c in validated],
        hoverinfo="text",
        name="candidates (validation)",
        mode="markers",
        marker={"color": COLORS[0], "size": 9, "line": {"width": 1, "color": "white"}},
        meta="candidates",
    )
    # one trace per role (seed, best, seed+best, frontier members), each point a candidate
    heldout: dict[str, list[dict[str, Any]]] = {}
    for row in view.replay.heldout:
        if row.get("outcome") == "completed":
            heldout.setdefault("+".join(map(str, row.get("roles") or [])), []).append(row)
    for roles, rows in heldout.items():
        ids = [str(r.get("candidate_id")) for r in rows]
        color = BEST_COLOR if "best" in roles else SEED_COLOR if "seed" in roles else COLORS[3]
        figure.add_scatter(
            x=[r.get("at_rollouts", end) for r in rows],
            y=[r.get("mean") for r in rows],
            customdata=[anchor(cid) for cid in ids],
            text=ids,
            hovertext=[
                f"<b>{cid}</b> heldout {float(r.get('mean') or 0):.4f} on {r.get('count')}"
                for cid, r in zip(ids, rows, strict=True)
            ],
            hoverinfo="text",
            name=f"{roles.replace('+', ' + ')} (heldout)",
            mode="markers",
            marker={"symbol": "diamond", "size": 13, "color": color,
                    "line": {"width": 1, "color": "black"}},
            meta=f"heldout:{roles}",
        )  # fmt: skip
    figure.update_xaxes(title_text="rollouts spent", rangemode="tozero")
    figure.update_yaxes(title_text="mean score")
    return figure


def overlay_figure(views: Sequence[RunView]) -> go.Figure | None:
    """Several runs' best validation curves (and best heldout) on one chart."""
    figure = _figure(height=400)
    drawn = False
    for i, view in enumerate(views):
        color = COLORS[i % len(COLORS)]
        xs, ys = _best_curve(view)
        if not xs:
            continue
        drawn = True
        figure.add_scatter(
            x=xs, y=ys, name=f"{view.run_id} (validation)", mode="lines+markers",
            line_shape="hv", line={"color": color, "width": 3}, meta=f"best_val:{i}",
        )  # fmt: skip
        best = view.best
        heldout = view.heldout_means.get(best.id) if best is not None else None
        if heldout is not None:
            at = next(
                (
                    r.get("at_rollouts")
                    for r in view.replay.heldout
                    if "best" in (r.get("roles") or []) and r.get("outcome") == "completed"
                ),
                view.replay.rollouts_spent,
            )
            figure.add_scatter(
                x=[at], y=[heldout], name=f"{view.run_id} (heldout best)", mode="markers",
                marker={"symbol": "diamond", "size": 13, "color": color,
                        "line": {"width": 1, "color": "black"}},
                meta=f"heldout_best:{i}",
            )  # fmt: skip
    if not drawn:
        return None
    figure.update_xaxes(title_text="rollouts spent", rangemode="tozero")
    figure.update_yaxes(title_text="mean score")
    return figure


def lineage_figure(view: RunView, anchor: Anchor) -> go.Figure | None:
    """The candidate tree: reflection edges solid, merge edges dashed, nodes coloured by
    validation score; each node's label links to its texts."""
    candidates = view.candidates
    if not candidates:
        return None
    nodes, edges = tree_layout(candidates)
    rows = max((n.row for n in nodes.values()), default=0.0) + 1
    figure = _figure(height=int(min(900, max(260, 60 + 46 * rows))))
    for kind, style in (
        ("reflection", {"color": "#9e9e9e", "width": 1.5}),
        ("merge", {"color": MERGE_COLOR, "width": 2, "dash": "dot"}),
    ):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for edge in (e for e in edges if e.kind == kind):
            parent, child = nodes[edge.parent_id], nodes[edge.child_id]
            xs += [parent.generation, child.generation, None]
            ys += [parent.row, child.row, None]
        if xs:
            figure.add_scatter(
                x=xs, y=ys, mode="lines", line=style, hoverinfo="skip",
                name=f"{kind} edge", meta=f"edges:{kind}",
            )  # fmt: skip
    best = view.best
    scored = [c.val_mean for c in candidates if c.val_mean is not None]
    symbols = {"seed": "square", "merge": "diamond"}
    figure.add_scatter(
        x=[nodes[c.id].generation for c in candidates],
        y=[nodes[c.id].row for c in candidates],
        customdata=[anchor(c.id) for c in candidates],
        text=[
            f'<a href="#{anchor(c.id)}">{c.id}</a> '
            + (f"{c.val_mean:.3f}" if c.val_mean is not None else "–")
            for c in candidates
        ],
        hovertext=[_hover(view, c) for c in candidates],
        hoverinfo="text",
        textposition="top center",
        mode="markers+text",
        name="candidates",
        showlegend=False,
        meta="nodes",
        marker={
            "size": [20 if best is not None and c.id == best.id else 14 for c in candidates],
            "symbol": [symbols.get(c.origin, "circle") for c in candidates],
            "color": [c.val_mean if c.val_mean is not None else float("nan") for c in candidates],
            "colorscale": "Viridis",
            "cmin": min(scored, default=0.0),
            "cmax": max(scored, default=1.0),
            "colorbar": {"title": {"text": "val"}, "thickness": 12},
            "line": {
                "width": [3 if best is not None and c.id == best.id else 1 for c in candidates],
                "color": [BEST_COLOR if best is not None and c.id == best.id else "#333"
                          for c in candidates],
            },
        },
    )  # fmt: skip
    last = max(n.generation for n in nodes.values())
    figure.update_xaxes(title_text="generation", dtick=1, zeroline=False, range=[-0.4, last + 0.4])
    # reversed rows, padded so the labels above the first row stay inside the plot
    figure.update_yaxes(visible=False, range=[rows - 0.4, -0.8])
    figure.update_layout(showlegend=True)
    return figure


def frontier_figure(view: RunView, anchor: Anchor) -> go.Figure | None:
    """Instance frontier: every validated candidate's score on every validation example,
    with a star where the candidate is on the frontier for that example."""
    validated = [c for c in view.validated if c.val_scores]
    if not validated:
        return None
    started = view.replay.started or {}
    examples = [str(e) for e in started.get("val_ids") or []] or sorted(
        {e for c in validated for e in c.val_scores}
    )
    frontier = view.frontier
    keys = frontier.frontier if frontier is not None else {}
    prefix = "example:" if frontier is not None and frontier.frontier_type == "hybrid" else ""
    figure = _figure(
        "Instance frontier: score per validation example (★ where a candidate is best and "
        "not every candidate ties)",
        height=int(min(900, max(260, 120 + 26 * len(validated)))),
    )
    figure.add_heatmap(
        x=examples,
        y=[c.id for c in validated],
        z=[[c.val_scores.get(e) for e in examples] for c in validated],
        colorscale="Blues",
        zmin=0,
        colorbar={"title": {"text": "score"}, "thickness": 12},
        hovertemplate="%{y} on %{x}: %{z:.3f}<extra></extra>",
        meta="scores",
    )
    shown = {c.id for c in validated}
    # an example every candidate ties on (all wrong, or all right) is won by no one
    wins = [
        (e, cid)
        for e in examples
        if not shown <= set(keys.get(prefix + e, []))
        for cid in keys.get(prefix + e, [])
        if cid in shown
    ]
    figure.add_scatter(
        x=[e for e, _ in wins], y=[cid for _, cid in wins],
        customdata=[anchor(cid) for _, cid in wins],
        mode="markers", name="on the frontier", meta="wins",
        marker={"symbol": "star", "size": max(4, min(11, 700 // len(examples))),
                "color": "#ffbf00",
                "line": {"width": 1, "color": "#333"}},
        hovertemplate="%{y} is on the frontier for %{x}<extra></extra>",
    )  # fmt: skip
    figure.update_xaxes(
        title_text="validation example", type="category", tickangle=-45, automargin=True
    )
    figure.update_yaxes(type="category", autorange="reversed", automargin=True)
    return figure


def pareto_ids(points: dict[str, tuple[float, float]]) -> list[str]:
    """The ids no other point beats on both coordinates (higher is better)."""
    return sorted(
        cid
        for cid, (x, y) in points.items()
        if not any(
            ox >= x and oy >= y and (ox > x or oy > y)
            for other, (ox, oy) in points.items()
            if other != cid
        )
    )


def objective_figure(view: RunView, anchor: Anchor) -> go.Figure | None:
    """Objective frontier: the trade-off between the first two objectives' means."""
    validated = [c for c in view.validated if len(c.objective_means) >= 2]
    if not validated:
        return None
    names = sorted(validated[0].objective_means)[:2]
    x_name, y_name = names
    points = {
        c.id: (c.objective_means[x_name], c.objective_means[y_name])
        for c in validated
        if x_name in c.objective_means and y_name in c.objective_means
    }
    front = pareto_ids(points)
    figure = _figure(f"Objective frontier: {x_name} vs {y_name}")
    by_id = {c.id: c for c in validated}
    ordered = sorted(front, key=lambda cid: points[cid][0])
    figure.add_scatter(
        x=[points[cid][0] for cid in ordered], y=[points[cid][1] for cid in ordered],
        mode="lines", line={"color": BEST_COLOR, "dash": "dot"}, name="trade-off",
        hoverinfo="skip", meta="tradeoff",
    )  # fmt: skip
    for name, ids, color in (
        ("dominated", [cid for cid in points if cid not in front], "#9e9e9e"),
        ("on the objective frontier", front, BEST_COLOR),
    ):
        figure.add_scatter(
            x=[points[cid][0] for cid in ids], y=[points[cid][1] for cid in ids],
            customdata=[anchor(cid) for cid in ids], text=ids,
            hovertext=[_hover(view, by_id[cid]) for cid in ids], hoverinfo="text",
            mode="markers+text", textposition="top center", name=name,
            marker={"size": 11, "color": color}, meta="objective:" + name,
        )  # fmt: skip
    figure.update_xaxes(title_text=f"{x_name} (validation mean)")
    figure.update_yaxes(title_text=f"{y_name} (validation mean)")
    return figure


# an online session's proposal becomes a challenger (it is given traffic), or is
# abandoned when the session ends during its reflection
SESSION_OUTCOMES = {"challenger": "accepted", "abandoned": "not_evaluated"}
# passed its minibatch, then found no room in the budget for its validation: like a
# child the validation policy dropped, it never joined the run
RUN_OUTCOMES = {"unvalidated": "dropped"}


def outcome_kind(outcome: str) -> str:
    """accepted, extended (an edit of a chain, validated at its tip), rejected,
    duplicate, dropped, not_evaluated, or failed (any call error, an unusable answer)."""
    kind = outcome.split(":", 1)[0].strip()
    if kind in ("accepted", "extended", "rejected", "duplicate", "dropped", "not_evaluated"):
        return kind
    return RUN_OUTCOMES.get(kind) or SESSION_OUTCOMES.get(kind, "failed")


OUTCOME_COLORS = {
    "accepted": "#2ca02c",
    "extended": "#98df8a",
    "rejected": "#d62728",
    "duplicate": "#9467bd",
    "dropped": "#8c564b",
    "not_evaluated": "#7f7f7f",
    "failed": "#000000",
}


def proposals_figure(view: RunView) -> go.Figure | None:
    """Proposer calls by what became of them, and merges by verdict."""
    counts = Counter(outcome_kind(p.outcome) for p in view.proposals)
    merges = Counter(d.type.split(".")[1] for d in view.replay.decisions if d.type[:6] == "merge.")
    if not counts and not merges:
        return None
    figure = _figure(height=300)
    for kind, color in OUTCOME_COLORS.items():
        values = [counts.get(kind, 0), merges.get(kind, 0)]
        if any(values):
            figure.add_bar(
                x=["proposals", "merges"], y=values, name=kind, marker_color=color,
                text=[v or "" for v in values], textposition="inside", textangle=0,
                meta=f"outcome:{kind}",
            )  # fmt: skip
    figure.update_layout(barmode="stack", uniformtext={"mode": "hide", "minsize": 10})
    figure.update_yaxes(title_text="count")
    return figure


def budget_figure(view: RunView) -> go.Figure | None:
    """Rollouts spent by split, next to the limit the run was given."""
    budget = view.budget
    rollouts = (budget or {}).get("rollouts") or {}
    if not rollouts:
        return None
    splits = [s for s in ("train", "val", "heldout") if s in rollouts]
    figure = _figure(height=240)
    for split, color in zip(splits, COLORS, strict=False):
        figure.add_bar(
            y=["rollouts"], x=[rollouts[split]], name=split, orientation="h",
            marker_color=color, text=[rollouts[split]], textposition="inside",
            meta=f"rollouts:{split}",
        )  # fmt: skip
    limit = view.limits.get("max_total_rollouts")
    if limit is not None:
        figure.add_vline(
            x=limit, line={"color": "#333", "dash": "dash"},
            annotation_text=f"max_total_rollouts {limit}", annotation_position="top",
        )  # fmt: skip
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title_text="rollouts", rangemode="tozero")
    return figure
