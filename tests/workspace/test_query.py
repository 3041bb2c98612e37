"""gepa-cli query and the views: pinned types, many runs, half-written lines, errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
from synthetic_runs import SyntheticSpec, write_synthetic_run

from gepa_cli.workspace import Workspace
from gepa_cli.workspace.schemas import CANDIDATES, EVENTS, PROPOSALS, ROLLOUTS, VIEW_NAMES
from support.cli import run_cli


def make_runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_synthetic_run(root, SyntheticSpec("a", seed=1))
    write_synthetic_run(root, SyntheticSpec("b", state="running", seed=2))
    return root


def test_views_have_pinned_types_and_run_ids(tmp_path: Path) -> None:
    root = make_runs(tmp_path)
    with Workspace.open(root) as ws:
        for view in VIEW_NAMES:
            names, _ = ws.query(f"SELECT * FROM {view} LIMIT 0")
            assert names[0] == "run_id", view
        for view, schema in (
            ("events", EVENTS),
            ("rollouts", ROLLOUTS),
            ("proposals", PROPOSALS),
            ("candidates", CANDIDATES),
        ):
            _, rows = ws.query(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + view + ")"
            )
            types = dict(rows)
            for column, pinned in schema.items():
                assert types[column].replace(" ", "") == pinned.replace(" ", ""), (view, column)
        _, rows = ws.query("SELECT run_id, count(*) FROM candidates GROUP BY 1 ORDER BY 1")
        assert [r[0] for r in rows] == ["a", "b"]
        # the half-written line of run b is not a row: counts equal complete lines
        _, rows = ws.query("SELECT count(*) FROM rollouts WHERE run_id = 'b'")
        assert rows[0][0] == (root / "b" / "rollouts.jsonl").read_bytes().count(b"\n")
        _, rows = ws.query("SELECT count(*), count(DISTINCT key) FROM frontier WHERE run_id='a'")
        assert rows[0][1] == 8 and rows[0][0] >= 8
        _, rows = ws.query("SELECT state FROM runs ORDER BY run_id")
        assert rows == [("finished",), ("running",)]
    # nothing was written into the run directories
    assert sorted(p.name for p in (root / "a").iterdir() if p.name.startswith(".")) == []


def test_query_formats_and_empty_files(tmp_path: Path) -> None:
    root = make_runs(tmp_path)
    (root / "empty").mkdir()
    (root / "empty" / "events.jsonl").write_bytes(b"")
    sql = "SELECT run_id, count(*) AS n FROM rollouts GROUP BY 1 ORDER BY 1"
    result = run_cli("query", sql, "--runs", str(root), "--format", "json")
    assert result.exit_code == 0, result.stderr
    records = orjson.loads(result.stdout)
    assert [r["run_id"] for r in records] == ["a", "b"] and all(r["n"] > 0 for r in records)
    result = run_cli("query", sql, "--runs", f"{root}/*", "--format", "csv")
    assert result.exit_code == 0
    assert next(csv.reader(io.StringIO(result.stdout))) == ["run_id", "n"]
    result = run_cli("query", "SELECT count(*) FROM runs", "--runs", str(root))
    assert result.exit_code == 0 and "3" in result.stdout


def test_bad_sql_exits_2_with_duckdb_message(tmp_path: Path) -> None:
    root = make_runs(tmp_path)
    result = run_cli("query", "SELECT nope FROM rollouts", "--runs", str(root))
    assert result.exit_code == 2
    assert result.stderr.startswith("error [query_error]: query failed: Binder Error")
    assert "nope" in result.stderr and result.stderr[-1] == "\n"
    result = run_cli("query", "SELECT 1", "--runs", str(root), "--format", "x")
    assert result.exit_code == 2 and "unknown --format" in result.stderr


def test_no_runs_gives_empty_typed_views(tmp_path: Path) -> None:
    with Workspace([]) as ws:
        names, rows = ws.query("SELECT * FROM rollouts")
        assert rows == [] and names[:3] == ["run_id", "candidate_id", "example_id"]
        assert ws.query("SELECT count(*) FROM cache")[1] == [(0,)]
