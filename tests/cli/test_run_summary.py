"""The human summary `gepa run` prints after a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gepa_cli.artifacts.schema import BestCandidate, Budget, Manifest, SeedCandidate
from gepa_cli.cli.gepa_run import _report
from gepa_cli.runner import RunResult


def test_the_summary_reads_as_text_not_python_reprs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = Manifest(
        run_id="r1",
        state="finished",
        stopped_by="max_total_rollouts",
        started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:01:00Z",
        best_candidate=BestCandidate(id="c0003", val_mean=0.7, heldout_mean=0.6),
        seed_candidate=SeedCandidate(id="c0000", val_mean=0.1, heldout_mean=0.2),
        budget=Budget(
            rollouts={"train": 42, "val": 80, "heldout": 20, "total": 142},
            proposals=7,
            tokens=0,
            cost_usd=0.0,
        ),
    )
    _report(RunResult(tmp_path / "r1", manifest.dump()), as_json=False)
    err = capsys.readouterr().err
    assert "  rollouts:   142 (train 42, val 80, heldout 20)\n" in err
    assert "validation: seed 0.100 -> best 0.700 (c0003)" in err
    assert "{" not in err and "'" not in err
