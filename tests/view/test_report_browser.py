"""Reports of real runs, opened in headless Chromium (Debian's package, driven by
playwright; no browser is ever downloaded): no console error, no request that leaves
the file, every plot drawn, and what it drew equal to the run's ledgers. Each page
is saved as a screenshot under the test's tmp dir (its path is printed)."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from view_runs import Run, SmallRun

from gepa_cli.view import RunView, render_report, write_report
from gepa_cli.view.figures import outcome_kind
from support.cli import run_cli

CHROMIUM = ("chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
NOT_A_FILE = re.compile(r"^(?!file:|data:|blob:|about:)")

PLOTS_JS = """() => Array.from(document.querySelectorAll('div.plot')).map(gd => ({
  id: gd.id,
  kind: gd.dataset.kind,
  drawn: Boolean(gd._fullLayout),
  traces: (gd.data || []).map(t => ({
    meta: t.meta, type: t.type, x: t.x, y: t.y, z: t.z, text: t.text, customdata: t.customdata,
  })),
  marks: Array.from(gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace')).map(g => {
    const calc = g.__data__ && g.__data__[0];
    const count = g.classList.contains('bars')
      ? g.querySelectorAll('.point > path').length
      : g.querySelectorAll('.points path.point').length;
    return [calc && calc.trace ? calc.trace.meta : null, count];
  }),
  images: gd.querySelectorAll('.heatmaplayer image').length,
}))"""


def chromium_path() -> str | None:
    return next((path for name in CHROMIUM if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser(
    tmp_path_factory: pytest.TempPathFactory,
    small: SmallRun,
    stopped: Run,
    merges: Run,
    failed: Run,
    down: Run,
) -> Iterator[Any]:
    """One Chromium for the module, with a fresh profile and no way out of file://.

    The runs are made first: playwright's sync API holds an event loop while the
    browser is open, and a run drives its own with asyncio.run."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
    )
    executable = chromium_path()
    if executable is None:
        reason = (
            "Debian's chromium is not installed: `apt-get install chromium` "
            "(.ci/run installs it on a fresh machine)"
        )
        if os.environ.get("GEPA_TEST_BROWSER", "").lower() in ("1", "require", "required"):
            pytest.fail(f"GEPA_TEST_BROWSER=require, but {reason}")  # CI must run them
        pytest.skip(reason)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.route(NOT_A_FILE, lambda route: route.abort())
        yield context
        context.close()


@dataclass
class Loaded:
    page: Any
    plots: list[dict[str, Any]]
    errors: list[str]
    requests: list[str]

    def plot(self, plot_id: str) -> dict[str, Any]:
        return next(p for p in self.plots if p["id"] == plot_id)

    def trace(self, plot_id: str, meta: str) -> dict[str, Any]:
        return next(t for t in self.plot(plot_id)["traces"] if t["meta"] == meta)

    def marks(self, plot_id: str, meta: str) -> int:
        return sum(n for m, n in self.plot(plot_id)["marks"] if m == meta)

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))


def open_report(browser: Any, html: Path, screenshot: Path) -> Loaded:
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.as_uri())
    page.wait_for_selector("body[data-plots-drawn]", timeout=60_000)
    plots = page.evaluate(PLOTS_JS)
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    loaded = Loaded(page, plots, errors, requests)
    assert errors == [], errors
    assert all(url.startswith("file:") for url in requests), requests
    assert int(page.get_attribute("body", "data-plots-drawn")) == len(plots)
    assert all(p["drawn"] for p in plots), [p["id"] for p in plots if not p["drawn"]]
    return loaded


def render(runs: list[Path], tmp_path: Path, name: str) -> Path:
    html = tmp_path / f"{name}.html"
    write_report(runs, html)
    return html


def approx(values: list[Any]) -> Any:
    return pytest.approx(values, abs=1e-12)


def check_against_ledgers(loaded: Loaded, run: Run, section: str = "r0") -> None:
    """Every plot of one run's section shows what its ledgers hold."""
    candidates = run.ledger("candidates.jsonl")
    ids = [c["candidate_id"] for c in candidates]
    manifest = run.manifest
    score = f"{section}-score"
    drawn = loaded.trace(score, "candidates")
    assert drawn["text"] == ids
    assert drawn["y"] == approx([c["val_mean"] for c in candidates])
    assert loaded.marks(score, "candidates") == len(ids)
    best = manifest["best_candidate"]
    assert loaded.trace(score, "best_val")["y"][-1] == pytest.approx(best["val_mean"])
    seed = manifest["seed_candidate"]
    assert loaded.trace(score, "seed_val")["y"] == approx([seed["val_mean"]] * 2)
    for role, facts in (("seed", seed), ("best", best)):
        if facts["heldout_mean"] is None:
            continue
        meta = "heldout:seed+best" if seed["id"] == best["id"] else f"heldout:{role}"
        assert loaded.trace(score, meta)["y"] == approx([facts["heldout_mean"]])
        assert loaded.marks(score, meta) == 1

    lineage = f"{section}-lineage"
    nodes = loaded.trace(lineage, "nodes")
    assert nodes["customdata"] == [f"{section}-{cid}" for cid in ids]
    assert loaded.marks(lineage, "nodes") == len(ids)
    merged = [c for c in candidates if c["origin"] == "merge"]
    if merged:
        edges = loaded.trace(lineage, "edges:merge")["x"]
        assert len(edges) == 3 * sum(len(c["parents"]) for c in merged)

    frontier = f"{section}-frontier"
    heatmap = loaded.trace(frontier, "scores")
    assert heatmap["y"] == ids
    # a child is evaluated under its proposal (or merge) id until it is accepted; the
    # validation of texts already scored under that id is not dispatched again
    owner = {c["proposal_id"]: c["candidate_id"] for c in candidates if c["proposal_id"]}
    scores = {
        (owner.get(r["candidate_id"], r["candidate_id"]), r["example_id"]): r["score"]
        for r in run.ledger("rollouts.jsonl")
        if r["split"] == "val"
    }
    for row, cid in enumerate(heatmap["y"]):
        for col, example in enumerate(heatmap["x"]):
            assert heatmap["z"][row][col] == pytest.approx(scores[(cid, example)])
    assert loaded.plot(frontier)["images"] >= 1
    members = loaded.trace(frontier, "wins")
    keys = orjson.loads((run.path / "frontier.json").read_bytes())["frontier"]
    # a star where a candidate is on the frontier, unless every candidate is
    assert sorted(zip(members["x"], members["y"], strict=True)) == sorted(
        (example, cid)
        for example, held in keys.items()
        if not set(ids) <= set(held)
        for cid in held
    )

    proposals = Counter(outcome_kind(p["outcome"]) for p in run.ledger("proposals.jsonl"))
    if proposals:
        for kind, count in proposals.items():
            assert loaded.trace(f"{section}-proposals", f"outcome:{kind}")["y"][0] == count
            assert loaded.marks(f"{section}-proposals", f"outcome:{kind}") >= 1

    budget = manifest["budget"]["rollouts"]
    for split in ("train", "val", "heldout"):
        if budget[split]:
            assert loaded.trace(f"{section}-budget", f"rollouts:{split}")["x"] == [budget[split]]


def test_report_of_a_finished_run(browser: Any, small: SmallRun, tmp_path: Path) -> None:
    loaded = open_report(browser, render([small.path], tmp_path, "small"), tmp_path / "small.png")
    assert {p["kind"] for p in loaded.plots} == {"score", "lineage", "frontier", "proposals",
                                                  "budget"}  # fmt: skip
    check_against_ledgers(loaded, small)
    cards = loaded.text("#r0 .cards")
    assert "finished (max_total_rollouts)" in cards and "of 120" in cards
    # one objective only: no trade-off plot, and the page says why
    assert "fewer than two objectives" in loaded.text("#r0")
    best = small.manifest["best_candidate"]
    diff = loaded.text("#r0 .module-diff")
    assert "system_prompt" in diff
    inserted = loaded.page.eval_on_selector_all(
        "#r0 .module-diff ins", "els => els.map(e => e.textContent)"
    )
    seed_text = run_cli("show", str(small.path), "seed").stdout
    assert "".join(inserted) and all(
        word.strip() not in seed_text for word in inserted if word.strip()
    )
    # the best's texts, in its (closed) candidate section
    shown = loaded.page.text_content(f"#r0-{best['id']} pre.text")
    assert shown == best["texts"]["system_prompt"]


def test_report_of_a_run_seen_while_it_was_running(
    browser: Any, small: SmallRun, tmp_path: Path
) -> None:
    loaded = open_report(browser, small.running_report, tmp_path / "running.png")
    assert "running" in loaded.text("#r0 .cards")
    assert "still running" in loaded.text("#r0 .note")
    final = {c["candidate_id"]: c["val_mean"] for c in small.ledger("candidates.jsonl")}
    drawn = loaded.trace("r0-score", "candidates")
    assert 1 <= len(drawn["text"]) < len(final)
    assert drawn["y"] == approx([final[cid] for cid in drawn["text"]])


def test_report_of_a_stopped_run(browser: Any, stopped: Run, tmp_path: Path) -> None:
    loaded = open_report(
        browser, render([stopped.path], tmp_path, "stopped"), tmp_path / "stopped.png"
    )
    check_against_ledgers(loaded, stopped)
    cards = loaded.text("#r0 .cards")
    assert "stopped (stop_file)" in cards
    # the proposer's model has no price: its cost is unknown, and never shown as $0
    manifest = stopped.manifest
    assert manifest["cost_known"] is False
    assert manifest["usage"]["proposer.openai_chat"]["cost_known"] is False
    assert "cost recorded\nunknown" in cards.lower()
    usage = loaded.page.eval_on_selector_all(
        "#r0 table.usage tr", "rows => rows.map(r => r.innerText.split('\\t'))"
    )
    by_boundary = {row[0]: row[-1] for row in usage[1:]}
    assert by_boundary["proposer.openai_chat"] == "unknown"
    assert by_boundary["container.rollout"] == "$0.0000"  # known: the container reports it
    limits = loaded.page.eval_on_selector_all(
        "#r0 table.limits tr", "rows => rows.map(r => r.innerText.split('\\t'))"
    )
    assert ["max_cost_usd", "unknown", "none"] in limits
    costs = loaded.page.eval_on_selector_all(
        "#r0 table.proposals tr[data-outcome] td:last-child", "tds => tds.map(t => t.innerText)"
    )
    assert costs and set(costs) == {"unknown"}
    # the heldout was not measured: the run stopped before it
    assert "heldout not measured" in loaded.text("#r0")


def test_report_of_a_run_with_merges(browser: Any, merges: Run, tmp_path: Path) -> None:
    loaded = open_report(
        browser, render([merges.path], tmp_path, "merges"), tmp_path / "merges.png"
    )
    check_against_ledgers(loaded, merges)
    # the objective frontier: every validated candidate at its two objective means
    candidates = {c["candidate_id"]: c for c in merges.ledger("candidates.jsonl")}
    points = {}
    for meta in ("objective:dominated", "objective:on the objective frontier"):
        trace = loaded.trace("r0-objectives", meta)
        points.update(
            {cid: (x, y) for cid, x, y in zip(trace["text"], trace["x"], trace["y"], strict=True)}
        )
    assert set(points) == set(candidates)
    for cid, (x, y) in points.items():
        means = candidates[cid]["objective_means"]
        assert (x, y) == pytest.approx((means["brevity"], means["coverage"]))
    # the frontier members scored on heldout, each at its heldout mean
    members = [
        m
        for m in merges.manifest["frontier"]["members"]
        if m["heldout_mean"] is not None
        and m["candidate_id"] not in (merges.manifest["seed_candidate"]["id"],
                                      merges.manifest["best_candidate"]["id"])
    ]  # fmt: skip
    frontier_heldout = loaded.trace("r0-score", "heldout:frontier")
    assert frontier_heldout["text"] == [m["candidate_id"] for m in members]
    assert frontier_heldout["y"] == approx([m["heldout_mean"] for m in members])
    assert loaded.marks("r0-score", "heldout:frontier") == len(members) == 2
    merged = next(cid for cid, c in candidates.items() if c["origin"] == "merge")
    # a link in the merges table opens that candidate's texts
    loaded.page.click(f'#r0 table.merges a[href="#r0-{merged}"]')
    loaded.page.wait_for_function(f"document.getElementById('r0-{merged}').open")
    assert candidates[merged]["texts"]["checklist"] in loaded.text(f"#r0-{merged}")
    # every proposal has a row saying why; a rejected one shows the text it proposed
    rows = loaded.page.eval_on_selector_all(
        "#r0 table.proposals tr[data-outcome]",
        "rows => rows.map(r => [r.cells[0].textContent, r.dataset.outcome,"
        " r.cells[5].textContent])",
    )
    ledger = {p["proposal_id"]: p for p in merges.ledger("proposals.jsonl")}
    assert [row[0] for row in rows] == list(ledger)
    for pid, kind, why in rows:
        assert kind == outcome_kind(ledger[pid]["outcome"])
        if kind in ("accepted", "rejected"):
            assert f"{pid} on {ledger[pid]['parent_id']}, minibatch sum" in why
        if kind == "rejected":
            assert ledger[pid]["new_text"] in why
    merge_rows = loaded.page.eval_on_selector_all("#r0 table.merges tr", "rows => rows.length")
    events = merges.ledger("events.jsonl")
    assert merge_rows - 1 == sum(e["type"] in ("merge.accepted", "merge.rejected") for e in events)


def test_report_of_failed_runs(browser: Any, failed: Run, down: Run, tmp_path: Path) -> None:
    loaded = open_report(
        browser, render([failed.path], tmp_path, "failed"), tmp_path / "failed.png"
    )
    assert "failed (proposer_failures)" in loaded.text("#r0 .cards")
    assert "proposer_error" in loaded.text("#r0 .note.error")
    seed = failed.manifest["seed_candidate"]
    assert loaded.trace("r0-score", "candidates")["y"] == approx([seed["val_mean"]])
    failures = loaded.trace("r0-proposals", "outcome:failed")["y"]
    assert failures[0] == len(failed.ledger("proposals.jsonl")) == 2

    loaded = open_report(browser, render([down.path], tmp_path, "down"), tmp_path / "down.png")
    assert loaded.plots == []
    assert "container_error" in loaded.text("#r0 .note.error")
    assert "No candidate has been validated yet." in loaded.text("#r0")


def test_report_of_several_runs_overlays_their_curves(
    browser: Any, small: SmallRun, merges: Run, stopped: Run, tmp_path: Path
) -> None:
    html = tmp_path / "three.html"
    result = run_cli(
        "report", str(small.path), str(merges.path), str(stopped.path), "-o", str(html)
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {html}")
    loaded = open_report(browser, html, tmp_path / "three.png")
    for i, run in enumerate((small, merges, stopped)):
        best = run.manifest["best_candidate"]
        assert loaded.trace("overlay", f"best_val:{i}")["y"][-1] == pytest.approx(best["val_mean"])
        if best["heldout_mean"] is not None:
            assert loaded.trace("overlay", f"heldout_best:{i}")["y"] == approx(
                [best["heldout_mean"]]
            )
    assert not any(t["meta"] == "heldout_best:2" for t in loaded.plot("overlay")["traces"])
    for i, run in enumerate((small, merges, stopped)):
        check_against_ledgers(loaded, run, f"r{i}")


def test_texts_with_markup_show_as_text(browser: Any, small: SmallRun, tmp_path: Path) -> None:
    hostile = '</script><script>document.title = "owned"</script><img src=x onerror=alert(1)>'
    view = RunView.load(small.path)
    seed = view.seed
    assert seed is not None
    seed.texts = {"system_prompt": hostile}
    html = tmp_path / "hostile.html"
    html.write_text(render_report([view]), encoding="utf-8")
    loaded = open_report(browser, html, tmp_path / "hostile.png")
    assert loaded.page.title() == "gepa-cli report: small"
    assert loaded.page.text_content("#r0-c0000 pre.text") == hostile
    assert loaded.page.eval_on_selector_all("img", "els => els.length") == 0
