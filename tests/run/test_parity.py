"""`gepa run` end to end: recorded, cached and replayed runs give the same feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.errors import CacheMissError
from gepa_cli.runner import GepaRun
from gepa_cli.runtime.container import UvicornThread
from support.cli import run_cli
from support.reference_container import create_app
from support.task_dir import make_task_dir


def profile(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((run_dir / "cache_profile.json").read_bytes())
    return data


def normalized(run_dir: Path) -> bytes:
    return (run_dir / "events.normalized.jsonl").read_bytes()


def test_fresh_cached_and_readonly_runs_are_identical(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path / "task")
    runs = tmp_path / "runs"
    fresh = GepaRun.from_toml(config, run_id="fresh", output_dir=runs).execute()
    assert fresh.state == "finished"
    assert fresh.stopped_by == "max_total_rollouts"
    best, seed = fresh.best_candidate, fresh.seed_candidate
    assert best is not None and seed is not None
    assert best["val_mean"] > seed["val_mean"]
    assert fresh["budget"]["rollouts"]["total"] <= 150

    rerun = run_cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        "rerun",
        "--output-dir",
        str(runs),
        "--json",
    )
    assert rerun.exit_code == 0, rerun.output
    totals = profile(runs / "rerun")["totals"]
    assert totals["misses"] == 0 and totals["writes"] == 0 and totals["hits"] > 0

    replay = run_cli(
        "gepa",
        "run",
        "--config",
        str(config),
        "--run-id",
        "replay",
        "--output-dir",
        str(runs),
        "--cache-mode",
        "readonly",
        "--cache-path",
        str(config.parent / "cache"),
        "--json",
    )
    assert replay.exit_code == 0, replay.output
    assert orjson.loads(replay.stdout)["best_candidate_id"] == best["id"]

    for other in ("rerun", "replay"):
        compared = run_cli(
            "events",
            "compare",
            "--left",
            str(runs / "fresh" / "events.jsonl"),
            "--right",
            str(runs / other),  # a run directory stands for its feed
        )
        assert compared.exit_code == 0, compared.output
    # recorded usage covers replayed calls too; every rollout of the replay was a hit
    replayed = orjson.loads((runs / "replay" / "manifest.json").read_bytes())
    assert replayed["usage"]["container.rollout"]["calls"] == fresh["budget"]["rollouts"]["total"]
    assert profile(runs / "replay")["boundaries"]["container.rollout"]["misses"] == 0


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"container": {"max_concurrency": 1}}, {"container": {"max_concurrency": 16}}),
        (
            {"gepa": {"rollout_submission_mode": "sync"}},
            {"gepa": {"rollout_submission_mode": "async"}},
        ),
    ],
    ids=["concurrency-1-vs-16", "sync-vs-async"],
)
def test_feed_does_not_depend_on_concurrency_or_submission(
    tmp_path: Path, left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]
) -> None:
    feeds = []
    for name, overrides in (("left", left), ("right", right)):
        gepa = {"max_total_rollouts": 120, "minibatch_size": 3, **overrides.get("gepa", {})}
        config = make_task_dir(
            tmp_path / name,
            container={"app": "reference_container:app", **overrides.get("container", {})},
            gepa=gepa,
            cache={"mode": "off"},
        )
        result = GepaRun.from_toml(config, run_id=name).execute()
        feeds.append(normalized(result.run_dir))
    assert feeds[0] == feeds[1]


def _url_config(tmp_path: Path, url: str, cache: Path, budget: int) -> Path:
    return make_task_dir(
        tmp_path / f"task-{budget}",
        container={"app": None, "url": url},
        gepa={"max_total_rollouts": budget, "minibatch_size": 3},
        cache={"mode": "readwrite", "path": str(cache), "namespace": "ref"},
    )


@pytest.mark.parametrize("recorded_budget", [None, 60], ids=["empty-cache", "partial-cache"])
def test_readonly_miss_names_boundary_and_key_and_calls_nothing(
    tmp_path: Path, recorded_budget: int | None
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    container = create_app()
    with UvicornThread(container) as url:
        if recorded_budget is not None:
            recorded = _url_config(tmp_path, url, cache, recorded_budget)
            GepaRun.from_toml(recorded, run_id="recorded", output_dir=tmp_path / "runs").execute()
        config = _url_config(tmp_path, url, cache, 150)
        stats = container.state.stats
        before = sum(stats.requests.values())
        result = run_cli(
            "gepa",
            "run",
            "--config",
            str(config),
            "--run-id",
            "replay",
            "--output-dir",
            str(tmp_path / "runs"),
            "--cache-mode",
            "readonly",
        )
        live_requests = sum(stats.requests.values()) - before
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error [{CacheMissError.error_code}]")
    boundary = "container.program" if recorded_budget is None else "container.rollout"
    assert boundary in line and "key" in line and "ref" in line
    assert live_requests == 0
    manifest = orjson.loads((tmp_path / "runs" / "replay" / "manifest.json").read_bytes())
    assert manifest["state"] == "failed"
    assert manifest["error"]["error_code"] == "cache_miss"
