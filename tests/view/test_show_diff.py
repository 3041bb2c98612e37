"""`gepa-cli show` and `gepa-cli diff` on real runs."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from view_runs import Run, SmallRun

from support.cli import run_cli


def gepa_cli(
    *args: str, stdout: int | object = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    """A real process, so its stdout is a real file, pipe or terminal."""
    return subprocess.run(
        [sys.executable, "-m", "gepa_cli.cli.main", *args],
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )


def test_show_piped_to_a_file_is_the_best_text_byte_for_byte(
    small: SmallRun, tmp_path: Path
) -> None:
    [(module, text)] = small.manifest["best_candidate"]["texts"].items()
    assert module == "system_prompt" and not text.endswith("\n")
    out = tmp_path / "best.txt"
    with out.open("wb") as handle:
        shown = gepa_cli("show", str(small.path), stdout=handle)
    assert shown.returncode == 0, shown.stderr
    assert out.read_bytes() == text.encode("utf-8")


def test_show_module_of_a_two_module_run(merges: Run) -> None:
    best = merges.manifest["best_candidate"]
    assert set(best["texts"]) == {"system_prompt", "checklist"}
    for module, text in best["texts"].items():
        shown = run_cli("show", str(merges.path), "--module", module)
        assert shown.exit_code == 0, shown.stderr
        assert shown.stdout_bytes == text.encode("utf-8")
    both = run_cli("show", str(merges.path))
    assert both.exit_code == 0
    assert both.stdout == "".join(
        f"==> {m} <==\n{t}\n" + ("\n" if i < 1 else "")
        for i, (m, t) in enumerate(best["texts"].items())
    )


def test_show_on_a_terminal_ends_with_a_newline(small: SmallRun) -> None:
    text = small.manifest["best_candidate"]["texts"]["system_prompt"]
    leader, follower = pty.openpty()
    try:
        shown = gepa_cli("show", str(small.path), stdout=follower)
        os.close(follower)
        got = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal is closed once the reader has everything
                break
            if not chunk:
                break
            got += chunk
    finally:
        os.close(leader)
    assert shown.returncode == 0, shown.stderr
    assert got.replace(b"\r\n", b"\n") == text.encode("utf-8") + b"\n"


def test_show_json_has_texts_scores_and_lineage(merges: Run) -> None:
    rows = {row["candidate_id"]: row for row in merges.ledger("candidates.jsonl")}
    merged = next(cid for cid, row in rows.items() if row["origin"] == "merge")
    shown = run_cli("show", str(merges.path), merged, "--json")
    assert shown.exit_code == 0, shown.output
    facts = orjson.loads(shown.stdout)
    row = rows[merged]
    assert facts["candidate_id"] == merged and facts["origin"] == "merge"
    assert facts["texts"] == row["texts"] and facts["parents"] == row["parents"]
    assert facts["val_mean"] == row["val_mean"] and facts["val_count"] == row["val_count"]
    assert facts["objective_means"] == row["objective_means"]
    # the lineage holds both parents and every ancestor up to the seed, each once
    ancestors, stack = set(), [merged]
    while stack:
        cid = stack.pop()
        if cid not in ancestors:
            ancestors.add(cid)
            stack += rows[cid]["parents"]
    assert {c["candidate_id"] for c in facts["lineage"]} == ancestors
    assert facts["lineage"][0]["candidate_id"] == "c0000"
    best = run_cli("show", str(merges.path), "--json")
    best_facts = orjson.loads(best.stdout)
    manifest_best = merges.manifest["best_candidate"]
    assert best_facts["candidate_id"] == manifest_best["id"] and "best" in best_facts["roles"]
    assert best_facts["heldout_mean"] == manifest_best["heldout_mean"]


def test_show_frontier_lists_members_with_their_scores(small: SmallRun) -> None:
    frontier = orjson.loads((small.path / "frontier.json").read_bytes())
    rows = {row["candidate_id"]: row for row in small.ledger("candidates.jsonl")}
    shown = run_cli("show", str(small.path), "--frontier", "--json")
    assert shown.exit_code == 0, shown.output
    facts = orjson.loads(shown.stdout)
    members = {m["candidate_id"]: m for m in facts["members"]}
    assert set(members) == {cid for ids in frontier["frontier"].values() for cid in ids}
    for cid, member in members.items():
        assert member["val_mean"] == rows[cid]["val_mean"]
        assert member["keys"] == sum(cid in ids for ids in frontier["frontier"].values())
    best = small.manifest["best_candidate"]
    assert members[best["id"]]["heldout_mean"] == best["heldout_mean"]
    means = [m["val_mean"] for m in facts["members"]]
    assert means == sorted(means, reverse=True)
    table = run_cli("show", str(small.path), "--frontier")
    assert table.exit_code == 0 and best["id"] in table.stdout and "heldout" in table.stdout


def test_diff_of_a_candidate_with_itself_is_empty_and_exits_0(small: SmallRun) -> None:
    for a, b in (("best", "best"), ("c0001", "c0001"), ("seed", "c0000")):
        same = run_cli("diff", str(small.path), a, b)
        assert same.exit_code == 0, same.output
        assert same.stdout == "" and same.stderr == ""


def test_diff_of_different_candidates_exits_1_with_a_plain_unified_diff(small: SmallRun) -> None:
    seed = small.manifest["seed_candidate"]
    best = small.manifest["best_candidate"]
    different = run_cli("diff", str(small.path))  # seed -> best by default
    assert different.exit_code == 1
    lines = different.stdout.splitlines()
    assert lines[0] == f"--- c0000/system_prompt\tval {seed['val_mean']:.4f} on 10, heldout " + (
        f"{seed['heldout_mean']:.4f}"
    )
    assert lines[1].startswith(f"+++ {best['id']}/system_prompt\tval {best['val_mean']:.4f}")
    assert lines[2].startswith("@@ ")
    assert f"+{best['texts']['system_prompt']}" in lines
    assert "\x1b[" not in different.stdout  # piped: no colour


def test_diff_is_coloured_on_a_terminal(small: SmallRun) -> None:
    coloured = run_cli("diff", str(small.path), "seed", "best", env={"FORCE_COLOR": "1"})
    assert coloured.exit_code == 1
    assert "\x1b[32m+" in coloured.stdout and "\x1b[31m-" in coloured.stdout


def test_diff_across_two_runs(small: SmallRun, merges: Run) -> None:
    across = run_cli("diff", str(small.path), "best", f"{merges.path}:best")
    assert across.exit_code == 1, across.output
    best = merges.manifest["best_candidate"]["id"]
    assert f"+++ merges:{best}/checklist" in across.stdout  # a module only one side has
    assert f"--- small:{small.manifest['best_candidate']['id']}/system_prompt" in across.stdout
    same = run_cli("diff", str(merges.path), "best", str(merges.path))
    assert same.exit_code == 0 and same.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["c9999"], "has no candidate 'c9999'"),
        (["best", "--module", "nope"], "has no module 'nope'"),
    ],
)
def test_bad_references_are_one_line_errors(small: SmallRun, args: list[str], message: str) -> None:
    shown = run_cli("show", str(small.path), *args)
    assert shown.exit_code == 2
    assert shown.stderr.startswith("error [view_error]") and message in shown.stderr
    assert shown.stdout == ""


def test_a_directory_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    for command in (["show"], ["diff"], ["report", "-o", str(tmp_path / "r.html")]):
        result = run_cli(*command, str(tmp_path))
        assert result.exit_code == 2, result.output
        assert f"{tmp_path} is not a run directory" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_refuses_an_output_it_cannot_write(small: SmallRun, tmp_path: Path) -> None:
    result = run_cli("report", str(small.path), "-o", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error [view_error]: {tmp_path} is a directory")
    written = tmp_path / "nested" / "r.html"
    result = run_cli("report", str(small.path), "-o", str(written))
    assert result.exit_code == 0, result.output
    assert written.stat().st_mode & 0o777 == 0o644
    assert written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_show_frontier_agrees_with_the_manifest_and_its_heldout(merges: Run) -> None:
    recorded = merges.manifest["frontier"]
    shown = run_cli("show", str(merges.path), "--frontier", "--json")
    assert shown.exit_code == 0, shown.output
    facts = orjson.loads(shown.stdout)
    assert facts["frontier_type"] == recorded["frontier_type"]
    assert [m["candidate_id"] for m in facts["members"]] == [
        m["candidate_id"] for m in recorded["members"]
    ]
    for ours, theirs in zip(facts["members"], recorded["members"], strict=True):
        assert ours["val_mean"] == theirs["val_mean"]
        assert ours["heldout_mean"] == theirs["heldout_mean"]
        assert ours["objective_means"] == theirs["objective_means"]
        assert ours["keys"] == theirs["fronts"]
    # the run scored two members besides the seed and the best on heldout
    roles = {m["candidate_id"]: m["roles"] for m in facts["members"]}
    measured = [m for m in facts["members"] if m["heldout_mean"] is not None]
    assert len([m for m in measured if not roles[m["candidate_id"]]]) == 2
