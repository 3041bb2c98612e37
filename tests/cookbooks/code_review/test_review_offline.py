"""The offline reviewer: checklist wording switches detectors on, and wording matters."""

from __future__ import annotations

from pathlib import Path

from code_review_task.data import load
from code_review_task.detectors import BY_ID, DETECTORS
from code_review_task.evaluate import evaluate
from code_review_task.prompt import SEED_CHECKLIST
from code_review_task.reviewer import detectors_for, review
from code_review_task.wording import Cue, items, words


def _ids(text: str) -> list[list[str]]:
    return [[d.id for d in detectors_for(item)] for item in items(text)]


def test_items_are_the_bulleted_lines_and_may_be_scoped() -> None:
    text = "Intro line about sql.\n- Check SQL\n* sql-injection: anything\n2) bare item\n"
    found = items(text)
    assert [(i.number, i.category) for i in found] == [(1, None), (2, "sql-injection"), (3, None)]
    # the scope names the category; only the rest of the item is its wording
    assert found[1].words == ("anything",)


def test_cues_match_words_phrases_prefixes_and_plurals() -> None:
    cue = Cue.parse("sql|query + format*|f string")
    assert cue.matches(words("Queries built by formatting"))
    assert cue.matches(words("SQL from f-strings"))
    assert not cue.matches(words("SQL with string formatting"[:9]))
    assert Cue.parse("off by one").matches(words("an off-by-one loop"))
    assert not Cue.parse("off by one").matches(words("one off by"))


def test_narrow_wording_replaces_the_broad_detector() -> None:
    assert _ids("- Check database queries.") == [["sql-any"]]
    assert _ids("- SQL built with string formatting") == [["sql-built-string"]]
    assert _ids("- Check error handling.") == [["error-any"]]
    assert _ids("- errors ignored or exceptions swallowed") == [
        ["err-discarded", "exception-swallowed"]
    ]
    # a scoped item only switches on its own category's detectors
    assert _ids("- race: SQL queries in threads without a lock") == [["unlocked-write"]]
    assert _ids("- Look for bugs and anything suspicious.") == [[]]


def test_every_detector_is_reachable_and_narrower_ids_exist() -> None:
    for d in DETECTORS:
        assert all(n in BY_ID and BY_ID[n].category == d.category for n in d.narrower)
        assert d.message and d.flags


def test_precise_item_catches_its_defect_and_a_vague_one_fires_on_clean_code() -> None:
    ds = load()
    buggy, clean = ds.by_id("py-orders-search-status"), ds.by_id("py-audit-log-insert")
    assert buggy is not None and clean is not None and not clean.defects
    precise = "- sql-injection: SQL built with f-strings or string formatting\n"
    vague = "- Check database queries.\n"
    (hit,) = review(precise, buggy.diff)
    assert (hit["line"], hit["category"], hit["item"]) == (
        buggy.defects[0].line,
        "sql-injection",
        1,
    )
    assert review(precise, clean.diff) == []
    assert len(review(vague, clean.diff)) >= 1  # the parameterized INSERT looks like a query


def test_findings_are_deduplicated_per_line_and_category() -> None:
    ex = load().by_id("py-orders-search-status")
    assert ex is not None
    twice = "- sql-injection: f-string SQL\n- sql-injection: SQL built by formatting\n"
    found = review(twice, ex.diff)
    assert len(found) == len({(x["file"], x["line"], x["category"]) for x in found})
    assert {x["item"] for x in found} == {1}


def test_wording_matters_on_the_dataset() -> None:
    """The seed is vague, a precise checklist beats it, a broad one buys recall with noise."""
    ds = load()
    precise = (
        "- sql-injection: SQL query built with string formatting\n"
        "- command-injection: shell command string built from user input\n"
        "- unchecked-error: error result ignored or discarded\n"
        "- unchecked-error: broad except that swallows the exception silently\n"
        "- resource-leak: file or connection opened and never closed\n"
        "- race: shared state written without holding a lock\n"
        "- wrong-default: HTTP call without a timeout\n"
        "- hardcoded-secret: password or token hardcoded in the source\n"
    )
    broad = precise + "- Check error handling.\n- Check loops.\n- Check defaults.\n"
    for split in ("train", "heldout"):
        seed = evaluate(SEED_CHECKLIST, ds.split(split))
        good = evaluate(precise, ds.split(split))
        wide = evaluate(broad, ds.split(split))
        assert good["reward"] > seed["reward"] + 0.2
        assert good["precision"] > seed["precision"] + 0.3
        assert wide["recall"] > good["recall"] and wide["precision"] < good["precision"] - 0.2


def test_the_readme_documents_every_detector_as_coded() -> None:
    readme = (Path(__file__).resolve().parents[3] / "cookbooks/code_review/README.md").read_text(
        encoding="utf-8"
    )
    for d in DETECTORS:
        kind = "broad" if d.narrower else "narrow"
        cues = " / ".join(f"`{c.spec.replace('|', chr(92) + '|')}`" for c in d.cues)
        row = f"| `{d.id}` | {d.category} | {kind} | {cues} | {d.flags} |"
        assert row in readme, d.id
