"""The word-level three-way merge of prompt texts and the word diff inside a line: known answers."""

from __future__ import annotations

import pytest

from aiconsole.prompts.diffs import DiffRow, Segment, diff_rows, tokens, word_diff
from aiconsole.prompts.merge import BOTH, CONFLICT, MINE, THEIRS, UNCHANGED, Hunk, merge3

BASE = "Tag this photo with up to {{ max_tags }} labels in {{ language }}. Use lower-case nouns, no duplicates."
# Someone's rewrite of the first sentence (the v4).
THEIRS_TEXT = ("Describe what is in the photo with at most {{ max_tags }} short tags in {{ language }}. "
               "Use lower-case nouns, no duplicates.")


def _kinds(hunks: tuple[Hunk, ...]) -> list[str]:
    return [h.kind for h in hunks]


def test_a_clean_merge_keeps_their_rewrite_and_my_addition() -> None:
    mine = BASE + " Skip watermarks and text."
    merged = merge3(BASE, THEIRS_TEXT, mine)
    assert merged.clean
    assert merged.text() == THEIRS_TEXT + " Skip watermarks and text."
    assert _kinds(merged.hunks) == [THEIRS, UNCHANGED, THEIRS, UNCHANGED, THEIRS, UNCHANGED, MINE]
    assert [h.theirs for h in merged.changes(THEIRS)] == ["Describe what is in the", "at most", "short tags"]
    assert [h.mine for h in merged.changes(MINE)] == [" Skip watermarks and text."]


def test_a_conflict_is_left_to_the_person_and_each_choice_is_kept() -> None:
    mine = BASE.replace("labels", "keywords")
    merged = merge3(BASE, THEIRS_TEXT, mine)
    assert not merged.clean
    [i] = merged.conflicts
    hunk = merged.hunks[i]
    assert (hunk.kind, hunk.base, hunk.theirs, hunk.mine) == (CONFLICT, "labels", "short tags", "keywords")
    assert hunk.merged is None
    with pytest.raises(ValueError, match="unresolved conflicts"):
        merged.text()
    # The rest of their rewrite is merged whatever the choice.
    assert merged.text({i: hunk.mine}) == THEIRS_TEXT.replace("short tags", "keywords")
    assert merged.text({i: hunk.theirs}) == THEIRS_TEXT
    assert merged.text({i: "terms"}) == THEIRS_TEXT.replace("short tags", "terms")


def test_identical_edits_merge_once() -> None:
    both = BASE.replace("no duplicates", "never repeat a tag")
    merged = merge3(BASE, both, both)
    assert merged.clean and merged.text() == both
    assert [(h.kind, h.base, h.mine) for h in merged.hunks if h.kind != UNCHANGED] == [
        (BOTH, "no duplicates", "never repeat a tag")]


def test_a_deletion_against_an_edit_of_the_same_words_conflicts() -> None:
    theirs = BASE.replace(" Use lower-case nouns, no duplicates.", "")
    mine = BASE.replace("lower-case nouns", "singular lower-case nouns")
    merged = merge3(BASE, theirs, mine)
    [i] = merged.conflicts
    hunk = merged.hunks[i]
    assert hunk.theirs == "" and "singular" in hunk.mine and "Use" in hunk.base
    assert merged.text({i: hunk.theirs}) == theirs
    assert merged.text({i: hunk.mine}) == mine


def test_a_deletion_elsewhere_merges_with_an_edit() -> None:
    theirs = BASE.replace(" Use lower-case nouns, no duplicates.", "")
    mine = BASE.replace("Tag this photo", "Tag the photo")
    merged = merge3(BASE, theirs, mine)
    assert merged.clean and merged.text() == theirs.replace("Tag this photo", "Tag the photo")


def test_unchanged_sides_and_empty_texts() -> None:
    assert merge3(BASE, BASE, BASE).text() == BASE and _kinds(merge3(BASE, BASE, BASE).hunks) == [UNCHANGED]
    assert merge3(BASE, THEIRS_TEXT, BASE).text() == THEIRS_TEXT
    assert merge3("", "theirs", "").text() == "theirs"
    [i] = (m := merge3("", "theirs", "mine")).conflicts  # both started something new: a conflict
    assert (m.hunks[i].theirs, m.hunks[i].mine) == ("theirs", "mine")
    assert merge3("a\nb\nc", "a\nB\nc", "a\nb\nc\nd").text() == "a\nB\nc\nd"  # lines are words too


def test_what_both_sides_inserted_alike_at_a_conflicts_edges_is_not_part_of_it() -> None:
    merged = merge3("Tag it.", "Tag it.\nTheirs.", "Tag it.\nMy edit.")
    assert [(h.kind, h.theirs, h.mine) for h in merged.hunks] == [
        (UNCHANGED, "Tag it.", "Tag it."), (BOTH, "\n", "\n"), (CONFLICT, "Theirs", "My edit"), (BOTH, ".", ".")]
    [i] = merged.conflicts
    assert merged.text({i: "Theirs. My edit"}) == "Tag it.\nTheirs. My edit."
    # One side's insertion extends the other's: no conflict left once the shared start is out.
    assert merge3("x", "x a", "x a b").text() == "x a b"


def test_hunk_digests_are_stable_and_distinct() -> None:
    one, two = merge3(BASE, THEIRS_TEXT, BASE + " x"), merge3(BASE, THEIRS_TEXT, BASE + " x")
    assert [h.digest for h in one.hunks] == [h.digest for h in two.hunks]
    assert len({h.digest for h in one.hunks}) == len(one.hunks)


def test_tokens_are_lossless() -> None:
    text = "Tag {{ max_tags }} labels — in «français», don't   repeat\n\tnew-line."
    assert "".join(tokens(text)) == text
    assert tokens("lower-case, nouns") == ["lower", "-", "case", ",", " ", "nouns"]


def test_word_diff_marks_the_changed_words_inside_a_line() -> None:
    assert word_diff("the red car", "the blue car") == [
        Segment("equal", "the "), Segment("removed", "red"), Segment("added", "blue"), Segment("equal", " car")]
    assert word_diff("a b", "a b c") == [Segment("equal", "a b"), Segment("added", " c")]
    assert word_diff("same", "same") == [Segment("equal", "same")]
    assert word_diff("", "new") == [Segment("added", "new")]
    segments = word_diff(BASE, THEIRS_TEXT)
    assert "".join(s.text for s in segments if s.kind != "added") == BASE
    assert "".join(s.text for s in segments if s.kind != "removed") == THEIRS_TEXT
    assert [s.text for s in segments if s.kind == "removed"] == ["Tag this", "up to", "labels"]


def test_diff_rows_carry_word_segments_for_changed_lines() -> None:
    rows = diff_rows("keep\nthe red car", "keep\nthe blue car\nnew")
    assert rows == [
        DiffRow("equal", 1, "keep", 1, "keep"),
        DiffRow("changed", 2, "the red car", 2, "the blue car",
                (Segment("equal", "the "), Segment("removed", "red"), Segment("added", "blue"),
                 Segment("equal", " car"))),
        DiffRow("added", None, None, 3, "new"),
    ]
