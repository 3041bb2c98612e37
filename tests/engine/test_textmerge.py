"""The three-way text merge behind `staleness_policy = "rebase"`: an edit replayed on
another version of the text keeps both versions' changes, or gives up (None)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gepa_cli.engine.textmerge import merge_lines, merge_texts

GUIDE = "Labels:\n- refund: refund money\n- card: card lost\n- fee: fee charged\n"


def test_edits_of_different_lines_are_both_kept() -> None:
    ours = GUIDE.replace("refund money", "refund money back")
    theirs = GUIDE.replace("fee charged", "fee charged twice")
    assert merge_lines(GUIDE, ours, theirs) == GUIDE.replace(
        "refund money", "refund money back"
    ).replace("fee charged", "fee charged twice")


def test_words_both_appended_to_one_line_are_both_kept() -> None:
    ours = GUIDE.replace("card lost", "card lost, stolen")
    theirs = GUIDE.replace("card lost", "card lost, missing, gone")
    assert merge_lines(GUIDE, ours, theirs) == GUIDE.replace(
        "card lost", "card lost, stolen, missing, gone"
    )


def test_a_shared_appended_prefix_is_not_repeated() -> None:
    base = "- v: visa mastercard"
    ours = "- v: visa mastercard, mastercard, between"
    theirs = "- v: visa mastercard, mastercard, both"
    assert merge_lines(base, ours, theirs) == "- v: visa mastercard, mastercard, between, both"


def test_words_both_only_deleted_are_all_deleted() -> None:
    assert merge_lines("- a: b c d\n", "- a: c d\n", "- a: b d\n") == "- a: d\n"


def test_the_same_word_changed_two_ways_is_a_conflict() -> None:
    assert merge_lines("- a: b c\n", "- a: b k\n", "- a: b j\n") is None


def test_lines_added_and_removed_at_one_place_are_a_conflict() -> None:
    assert merge_lines("x\ny\n", "x\nnew\n", "x\n") is None


def test_a_dropped_final_newline_is_not_an_edit() -> None:
    ours = GUIDE.rstrip("\n").replace("refund money", "refund money back")
    theirs = GUIDE.replace("fee charged", "fee charged twice")
    merged = merge_lines(GUIDE, ours, theirs)
    assert merged is not None and merged.endswith("fee charged twice\n")
    assert "refund money back" in merged


def test_merge_texts_merges_each_edited_module_and_fails_on_any_conflict() -> None:
    base = {"a": "x y", "b": "p q"}
    assert merge_texts(base, {"a": "x y z", "b": "p q"}, {"a": "x y", "b": "p q r"}) == {
        "a": "x y z",
        "b": "p q r",
    }
    assert merge_texts(base, {"a": "x k", "b": "p q"}, {"a": "x j", "b": "p q"}) is None


lines = st.lists(st.sampled_from(["- a: b", "- c: d e", "x", "y z", ""]), max_size=6)


@given(base=lines, other=lines)
def test_an_edit_onto_an_unchanged_text_is_the_edit(base: list[str], other: list[str]) -> None:
    b, o = "\n".join(base) + "\n", "\n".join(other) + "\n"
    assert merge_lines(b, o, b) == o
    assert merge_lines(b, b, o) == o
