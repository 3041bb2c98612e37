"""CI parity on the code-review cookbook: the committed recording replays to the golden
feed, a live run still produces it, and the recorded run keeps the cookbook's promises.

`cookbooks/code_review/replay/` holds the response cache and the normalized event feed of
a run of `gepa.toml` (see replay/README.md to record it again).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from code_review_task.data import load
from code_review_task.evaluate import evaluate
from code_review_task.report import frontier_report
from typer.testing import CliRunner

from gepa_cli.cli.main import app
from gepa_cli.config.load import SECRET_VALUES

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbooks" / "code_review"
CONFIG = COOKBOOK / "gepa.toml"
REPLAY = COOKBOOK / "replay"
GOLDEN = REPLAY / "events.normalized.jsonl"
QUERYING = COOKBOOK.parents[1] / "docs" / "querying.md"
FRONTIER_ON_HELDOUT = "### Precision and recall of every frontier member on heldout"
RECORDED_CACHE = REPLAY / "cache"
MAX_CACHE_FILES = 1300  # one file per rollout: the recording is committed to git
MAX_CACHE_BYTES = 6_000_000


def _run(tmp_path: Path, *, cache_mode: str, cache_path: Path, run_id: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app,
        [
            "gepa",
            "run",
            "--config",
            str(CONFIG),
            "--cache-mode",
            cache_mode,
            "--output-dir",
            str(tmp_path / "runs"),
            "--run-id",
            run_id,
            "--json",
        ],
        env={"GEPA_CLI_CACHE_PATH": str(cache_path)},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    facts: dict[str, Any] = json.loads(result.stdout)
    return facts


def _compare(left: Path, right: Path) -> int:
    result = CliRunner().invoke(
        app, ["events", "compare", "--left", str(left), "--right", str(right)]
    )
    return result.exit_code


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("replay")
    return _run(tmp, cache_mode="readonly", cache_path=RECORDED_CACHE, run_id="replay")


def test_readonly_replay_reproduces_the_golden_feed(replayed: dict[str, Any]) -> None:
    run_dir = Path(replayed["run_dir"])
    assert replayed["state"] == "finished"
    assert _compare(GOLDEN, run_dir / "events.jsonl") == 0
    assert _compare(GOLDEN, run_dir / "events.normalized.jsonl") == 0
    profile = json.loads((run_dir / "cache_profile.json").read_text())
    assert profile["mode"] == "readonly"
    for boundary, counts in profile["boundaries"].items():
        assert counts["hits"] > 0, boundary
        assert counts["misses"] == counts["writes"] == counts["not_stored"] == 0, boundary


def test_the_recorded_run_keeps_the_cookbooks_promises(replayed: dict[str, Any]) -> None:
    """Heldout gain over the seed, and a frontier that trades precision against recall."""
    assert replayed["best_heldout_mean"] - replayed["seed_heldout_mean"] >= 0.15
    facts, members = frontier_report(Path(replayed["run_dir"]))
    assert facts["frontier_type"] == "objective"
    front = [m for m in members if m.non_dominated]
    assert len(front) >= 3 and all(m.keys for m in front)
    # no member dominates another on validation precision, recall and quiet ...
    for a in front:
        for b in front:
            if a is not b:
                keys = ("precision", "recall", "quiet")
                assert not all(b.val[k] >= a.val[k] for k in keys), (a, b)
    # ... and their precision and recall differ visibly, pair by pair
    for i, a in enumerate(front):
        for b in front[i + 1 :]:
            gap = max(
                abs(a.val["precision"] - b.val["precision"]), abs(a.val["recall"] - b.val["recall"])
            )
            assert gap >= 0.05, (a.candidate_id, b.candidate_id)


def test_report_heldout_scores_match_the_runs_own_rollouts(replayed: dict[str, Any]) -> None:
    """The report computes heldout scores of members the run did not score with the
    offline reviewer; for every candidate the run scored, that computation must agree
    with what the run recorded."""
    run_dir = Path(replayed["run_dir"])
    _facts, members = frontier_report(run_dir)
    recorded = [m for m in members if m.heldout_source == "run"]
    assert {m.candidate_id for m in recorded} >= {"c0000", replayed["best_candidate_id"]}
    candidates = {
        json.loads(line)["candidate_id"]: json.loads(line)
        for line in (run_dir / "candidates.jsonl").read_text().splitlines()
    }
    heldout = load().split("heldout")
    for m in recorded:
        again = evaluate(candidates[m.candidate_id]["texts"]["checklist"], heldout)
        assert m.heldout is not None
        for key in ("reward", "precision", "recall", "quiet"):
            assert again[key] == pytest.approx(m.heldout[key], abs=1e-4), (m.candidate_id, key)


def _documented_statement() -> str:
    """The SQL of the docs' frontier-on-heldout example, exactly as shown there."""
    section = QUERYING.read_text(encoding="utf-8").split(FRONTIER_ON_HELDOUT, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    match = re.fullmatch(r'gepa-cli query "(.+)" --runs \S+\n', block, re.S)
    assert match, block
    return match.group(1)


def test_the_documented_statement_gives_every_frontier_member_on_heldout(
    replayed: dict[str, Any],
) -> None:
    run_dir = Path(replayed["run_dir"])
    result = CliRunner().invoke(
        app, ["query", _documented_statement(), "--runs", str(run_dir), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    frontier = json.loads((run_dir / "frontier.json").read_text())
    members = {cid for ids in frontier["frontier"].values() for cid in ids}
    assert [r["candidate_id"] for r in rows] == sorted(members)
    # the means, from the run's own heldout rollouts
    heldout: dict[str, list[dict[str, float]]] = {}
    for line in (run_dir / "rollouts.jsonl").read_text().splitlines():
        rollout = json.loads(line)
        if rollout["split"] == "heldout":
            heldout.setdefault(rollout["candidate_id"], []).append(rollout["objectives"])
    for row in rows:
        scored = heldout[row["candidate_id"]]
        assert row["heldout_rows"] == len(scored) == 38
        for name in ("precision", "recall"):
            assert row[name] is not None
            mean = sum(o[name] for o in scored) / len(scored)
            assert row[name] == pytest.approx(mean, abs=5e-4), (row, name)
    # an objective frontier: each member is best on an objective it names
    assert all(r["best_on"] and r["best_on"].startswith("objective:") for r in rows)


def test_live_run_still_produces_the_golden_feed(tmp_path: Path) -> None:
    """Fails when the cookbook or the engine changed what the run does: record again."""
    facts = _run(tmp_path, cache_mode="readwrite", cache_path=tmp_path / "cache", run_id="live")
    assert _compare(GOLDEN, Path(facts["run_dir"]) / "events.jsonl") == 0, (
        "the recording in cookbooks/code_review/replay is stale; see its README to record again"
    )
    fresh = sorted(p.name for p in (tmp_path / "cache").rglob("*.json"))
    committed = sorted(p.name for p in RECORDED_CACHE.rglob("*.json"))
    assert fresh == committed


def test_compare_notices_a_different_feed(tmp_path: Path) -> None:
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()
    finished = next(i for i, line in enumerate(lines) if '"run.finished"' in line)
    event = json.loads(lines[finished])
    event["data"]["best_heldout_mean"] = 1.0
    lines[finished] = json.dumps(event, sort_keys=True)
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _compare(GOLDEN, changed) == 1


def test_replay_from_an_empty_cache_calls_nothing_live(tmp_path: Path) -> None:
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    result = CliRunner().invoke(
        app,
        [
            "gepa",
            "run",
            "--config",
            str(CONFIG),
            "--cache-mode",
            "readonly",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        env={"GEPA_CLI_CACHE_PATH": str(empty)},
    )
    assert result.exit_code == 1
    assert "cache_miss" in result.output


def test_recording_is_small_portable_and_holds_no_secret() -> None:
    files = [p for p in RECORDED_CACHE.rglob("*") if p.is_file()]
    assert 0 < len(files) <= MAX_CACHE_FILES
    assert sum(p.stat().st_size for p in files) <= MAX_CACHE_BYTES
    assert all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    assert {p.relative_to(RECORDED_CACHE).parts[0] for p in files} == {"code_review"}
    text = GOLDEN.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    for needle in (str(Path.home()), str(COOKBOOK.parents[1]), "/tmp/", "127.0.0.1"):
        assert needle not in text, needle
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text)
    # the dataset's planted secrets are made up, and none looks like a real key
    for path in [GOLDEN, *files]:
        assert not SECRET_VALUES.search(path.read_text(encoding="utf-8")), path
