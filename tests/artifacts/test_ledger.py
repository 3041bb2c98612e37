"""Ledgers: buffered appends, committed offsets, truncation on resume, torn lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from gepa_cli.artifacts.ledger import JsonlLedger, LedgerOffset, iter_jsonl, read_jsonl
from gepa_cli.errors import GepaCliError, ResumeError


def test_flush_offset_truncate_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rollouts.jsonl"
    ledger = JsonlLedger(path)
    for i in range(3):
        assert ledger.append({"i": i, "b": "x"}) == i
    assert path.read_bytes() == b""  # buffered until the checkpoint
    checkpoint = ledger.flush()
    assert checkpoint == LedgerOffset(lines=3, bytes=path.stat().st_size)
    assert path.read_bytes().startswith(b'{"b":"x","i":0}\n')

    # work after the checkpoint reaches the file, then the run crashes mid-line
    ledger.append({"i": 3})
    ledger.flush()
    ledger.close()
    with open(path, "ab") as handle:
        handle.write(b'{"i": 4, "par')
    assert [row["i"] for row in read_jsonl(path)] == [0, 1, 2, 3]

    resumed = JsonlLedger(path, resume_from=checkpoint)
    assert resumed.committed == checkpoint and resumed.lines == 3
    assert [row["i"] for row in read_jsonl(path)] == [0, 1, 2]
    resumed.append({"i": 3, "again": True})
    after = resumed.close()
    assert after.lines == 4
    rows = read_jsonl(path)
    assert [row["i"] for row in rows] == [0, 1, 2, 3] and rows[3]["again"] is True


def test_new_ledger_never_overwrites_data(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"seq": 0}\n')
    with pytest.raises(ResumeError, match="already holds data"):
        JsonlLedger(path)
    assert path.read_text() == '{"seq": 0}\n'


def test_resume_rejects_offsets_the_file_cannot_have(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"a":1}\n{"a":2}\n')
    with pytest.raises(ResumeError, match="recorded 100"):
        JsonlLedger(path, resume_from=LedgerOffset(lines=9, bytes=100))
    with pytest.raises(ResumeError, match="not at a line end"):
        JsonlLedger(path, resume_from=LedgerOffset(lines=1, bytes=4))
    assert path.read_text() == '{"a":1}\n{"a":2}\n'


def test_large_buffers_spill_but_commit_only_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "proposals.jsonl"
    ledger = JsonlLedger(path)
    for _ in range(40):
        ledger.append({"text": "y" * 40_000})
    assert path.stat().st_size > 0 and ledger.committed == LedgerOffset()
    assert ledger.flush().lines == 40
    ledger.close()


def test_reader_rejects_bad_lines_except_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a":1}\n\n{"a":2}')  # valid last line without newline is kept
    assert [n for n, _ in iter_jsonl(path)] == [1, 3]
    path.write_text('{"a":1}\nnot json\n{"a":2}\n')
    with pytest.raises(GepaCliError, match="line 2 is not valid JSON"):
        list(iter_jsonl(path))
    path.write_text("[1, 2]\n")
    with pytest.raises(GepaCliError, match="line 1 is not a JSON object"):
        list(iter_jsonl(path))
