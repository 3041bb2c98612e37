"""The online cookbook demo, offline: served accuracy rises within a small request budget."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.replay import check_artifacts, replay_events


def test_online_demo_learns_from_rewarded_traffic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from banking77_task import online_demo

    assert (
        online_demo.main(["--requests", "200", "--window", "100", "--output-dir", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    match = re.search(r"first window ([\d.]+)% -> last window ([\d.]+)%", out)
    assert match, out
    first, last = float(match.group(1)), float(match.group(2))
    assert last >= first + 10, out
    run_dir = tmp_path / "runs" / "banking77-online"
    replay = replay_events(run_dir / layout.EVENTS)
    assert replay.session is not None and replay.session.proposals >= 1
    report = check_artifacts(replay)
    assert report.ok, [d.line() for d in report.disagreements]


def test_standin_answers_from_the_guidance_lines() -> None:
    from banking77_task.standin import answer

    prompt = "Labels:\n- card_arrival: arrive, not received\n- lost_or_stolen_card: stolen"
    user = (
        "Customer message: My card has not received yet\n\nAnswer with exactly one of these labels"
    )
    assert answer([{"role": "system", "content": prompt}, {"role": "user", "content": user}])[
        0
    ] == ("card_arrival")
    stolen = [{"role": "system", "content": prompt}, {"role": "user", "content": "it was stolen"}]
    assert answer(stolen)[0] == "lost_or_stolen_card"
    assert answer([{"role": "user", "content": "it was stolen"}])[0] == "unknown"
