"""Event writer, normalization and compare (library and CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.artifacts.compare import compare_feeds
from gepa_cli.artifacts.events import EventWriter, normalize_event, normalize_file
from gepa_cli.artifacts.ledger import JsonlLedger, read_jsonl
from support.cli import run_cli


def write_feed(path: Path, run_id: str, events: list[tuple[str, dict[str, Any]]]) -> Path:
    ticks = iter(range(10_000))
    ledger = JsonlLedger(path)
    writer = EventWriter(ledger, run_id, clock=lambda: f"2025-01-01T00:00:{next(ticks):02d}Z")
    for type_, data in events:
        writer.emit(type_, data)
    ledger.close()
    return path


def run_events(run: str, score: float = 0.5) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("run.started", {"run_dir": f"/tmp/{run}", "config_path": f"/home/{run}.toml"}),
        (
            "rollout.finished",
            {
                "candidate": "c0",
                "score": score,
                "latency_ms": 12 if run == "a" else 97,
                "cache_action": "write" if run == "a" else "hit",
                "usage": {"tokens": 10, "started_at": run},
                "attempts": [{"url": f"http://127.0.0.1:{8000 + len(run)}"}],
            },
        ),
        ("candidate.accepted", {"candidate": "c1", "scores": [0.5, 1.0]}),
    ]


def test_writer_lines_seq_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    ledger = JsonlLedger(path)
    writer = EventWriter(ledger, "run-1")
    writer.emit("run.started", {"n": 1})
    writer.emit("rollout.finished", {"score": 0.5})
    checkpoint = ledger.flush()
    writer.emit("candidate.accepted", {})  # after the checkpoint: redone on resume
    ledger.close()
    rows = read_jsonl(path)
    assert [row["seq"] for row in rows] == [0, 1, 2]
    assert set(rows[0]) == {"seq", "ts", "type", "run_id", "data"}
    assert rows[0]["ts"].endswith("Z") and rows[0]["run_id"] == "run-1"
    first_line = path.read_bytes().split(b"\n")[0]
    assert first_line.startswith(b'{"data":{') and b", " not in first_line  # compact, sorted

    resumed = EventWriter(JsonlLedger(path, resume_from=checkpoint), "run-1")
    assert resumed.next_seq == 2
    resumed.emit("run.resumed", {})
    resumed.ledger.close()
    assert [(row["seq"], row["type"]) for row in read_jsonl(path)][2:] == [(2, "run.resumed")]
    with pytest.raises(ValueError, match="next_seq"):
        EventWriter(JsonlLedger(path, resume_from=checkpoint), "run-1", next_seq=7)


def test_normalize_drops_volatile_fields_and_is_stable(tmp_path: Path) -> None:
    a = write_feed(tmp_path / "a.jsonl", "run-a", run_events("a"))
    b = write_feed(tmp_path / "b.jsonl", "run-b", run_events("bb"))
    assert normalize_file(a) == normalize_file(b)
    rollout = orjson.loads(normalize_file(a).split(b"\n")[1])
    assert rollout == {
        "seq": 1,
        "type": "rollout.finished",
        "data": {"candidate": "c0", "score": 0.5, "usage": {"tokens": 10}},
    }
    normalized = normalize_file(a, tmp_path / "n.jsonl")
    assert (tmp_path / "n.jsonl").read_bytes() == normalized
    # idempotent: normalizing a normalized feed changes nothing
    assert normalize_file(tmp_path / "n.jsonl") == normalized
    assert normalize_event({"seq": 0, "type": "x"}) == {"seq": 0, "type": "x"}


def test_compare_identical_and_different(tmp_path: Path) -> None:
    a = write_feed(tmp_path / "a.jsonl", "run-a", run_events("a"))
    b = write_feed(tmp_path / "b.jsonl", "run-b", run_events("bb"))
    normalize_file(b, tmp_path / "b.normalized.jsonl")
    assert compare_feeds(a, b).identical
    assert compare_feeds(a, tmp_path / "b.normalized.jsonl").identical  # raw vs normalized

    c = write_feed(tmp_path / "c.jsonl", "run-c", run_events("a", score=0.75))
    result = compare_feeds(a, c)
    assert not result.identical and result.line == 2
    assert result.differing_keys == ["data.score"]
    assert result.left_line is not None and '"score":0.5' in result.left_line
    assert result.right_line is not None and '"score":0.75' in result.right_line


def test_compare_shorter_feed(tmp_path: Path) -> None:
    a = write_feed(tmp_path / "a.jsonl", "run-a", run_events("a"))
    short = write_feed(tmp_path / "s.jsonl", "run-s", run_events("a")[:2])
    result = compare_feeds(a, short)
    assert not result.identical and result.line == 3 and result.right_line is None
    assert (result.left_lines, result.right_lines) == (3, 2)
    assert "right feed ends after 2 events" in result.summary()


def test_cli_normalize_and_compare(tmp_path: Path) -> None:
    a = write_feed(tmp_path / "a.jsonl", "run-a", run_events("a"))
    b = write_feed(tmp_path / "b.jsonl", "run-b", run_events("bb"))
    c = write_feed(tmp_path / "c.jsonl", "run-c", run_events("a", score=0.0))

    out = run_cli("events", "normalize", str(a))
    assert out.exit_code == 0 and out.stdout.encode() == normalize_file(a)
    to_file = run_cli("events", "normalize", str(a), "-o", str(tmp_path / "o.jsonl"))
    assert to_file.exit_code == 0 and (tmp_path / "o.jsonl").read_bytes() == normalize_file(a)

    same = run_cli("events", "compare", "--left", str(a), "--right", str(b))
    assert same.exit_code == 0 and "identical: 3 events" in same.output

    differ = run_cli("events", "compare", "--left", str(a), "--right", str(c), "--json")
    assert differ.exit_code == 1
    report = orjson.loads(differ.stdout)
    assert report["line"] == 2 and report["differing_keys"] == ["data.score"]


def test_cli_compare_bad_input_exits_2(tmp_path: Path) -> None:
    a = write_feed(tmp_path / "a.jsonl", "run-a", run_events("a"))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(a.read_bytes().replace(b'"seq":1', b'"seq":1,,', 1))
    result = run_cli("events", "compare", "--left", str(a), "--right", str(bad))
    assert result.exit_code == 2
    assert f"error [event_compare_error]: {bad} line 2 is not valid JSON" in result.output
    missing = run_cli("events", "compare", "--left", str(a), "--right", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "cannot read" in missing.output
    norm = run_cli("events", "normalize", str(bad))
    assert norm.exit_code == 2
