"""Diffs of prompt texts: side-by-side line rows, and word-level changes inside a line.

Prompts are usually one long line, so a line diff alone says only "this line changed". Every changed line
also carries its word-level segments. Words come from diff-match-patch (Myers' diff with a deadline, and
its semantic cleanup, so a rewrite reads as one change instead of a confetti of shared spaces) run over
word tokens: each distinct token is mapped to one private-use character, diffed, and mapped back.
`aiconsole.prompts.merge` uses the same token matching for three-way merges.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diff_match_patch import diff_match_patch

# A word, a run of white space, or one other character: joined back, the tokens are exactly the text.
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
# Tokens are encoded as characters of the supplementary private-use planes (no letter, digit or space
# class to confuse diff-match-patch's boundary scoring); 131,068 of them cover any prompt the size limit lets in.
_FIRST_CODE = 0xF0000
_LAST_CODE = 0x10FFFD
DIFF_TIMEOUT_S = 1.0  # diff-match-patch's deadline: past it, a coarser (still correct) diff is returned

EQUAL, REMOVED, ADDED = "equal", "removed", "added"


@dataclass(frozen=True)
class Segment:
    """A run of text in a word diff: equal (both sides), removed (left only) or added (right only)."""

    kind: str
    text: str


@dataclass(frozen=True)
class DiffRow:
    """One side-by-side diff line: kind is equal, changed, added or removed; a missing side is None.

    A changed row's `words` are its word-level segments, left to right.
    """

    kind: str
    left_no: int | None
    left: str | None
    right_no: int | None
    right: str | None
    words: tuple[Segment, ...] = ()


def tokens(text: str) -> list[str]:
    """`text` as word, white-space and punctuation tokens (joined, they are the text again)."""
    return _TOKEN.findall(text)


def matching_blocks(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int]]:
    """(start in a, start in b, length) of each run of tokens the two sequences share, in order."""
    codes: dict[str, str] = {}

    def encode(seq: Sequence[str]) -> str:
        out = []
        for token in seq:
            if token not in codes:
                if _FIRST_CODE + len(codes) > _LAST_CODE:  # cannot happen under the size limit; stay correct
                    raise ValueError("too many distinct words to diff")
                codes[token] = chr(_FIRST_CODE + len(codes))
            out.append(codes[token])
        return "".join(out)

    engine = diff_match_patch()
    engine.Diff_Timeout = DIFF_TIMEOUT_S
    ops = engine.diff_main(encode(a), encode(b), False)
    engine.diff_cleanupSemantic(ops)
    blocks: list[tuple[int, int, int]] = []
    i = j = 0
    for op, chunk in ops:
        n = len(chunk)
        if op == 0:
            blocks.append((i, j, n))
            i, j = i + n, j + n
        elif op < 0:
            i += n
        else:
            j += n
    return blocks


def word_diff(left: str, right: str) -> list[Segment]:
    """The word-level segments from `left` to `right` (removed before added where both are at one place)."""
    a, b = tokens(left), tokens(right)
    out: list[Segment] = []

    def add(kind: str, text: str) -> None:
        if not text:
            return
        if out and out[-1].kind == kind:
            out[-1] = Segment(kind, out[-1].text + text)
        else:
            out.append(Segment(kind, text))

    i = j = 0
    for bi, bj, n in [*matching_blocks(a, b), (len(a), len(b), 0)]:
        add(REMOVED, "".join(a[i:bi]))
        add(ADDED, "".join(b[j:bj]))
        add(EQUAL, "".join(a[bi:bi + n]))
        i, j = bi + n, bj + n
    return out


def diff_rows(left: str, right: str) -> list[DiffRow]:
    """Side-by-side rows of a line diff from `left` to `right`; changed rows carry their word segments."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow("equal", i + 1, a[i], j + 1, b[j]) for i, j in zip(range(i1, i2), range(j1, j2),
                                                                                   strict=True))
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            has_a, has_b = i < i2, j < j2
            if has_a and has_b:
                rows.append(DiffRow("changed", i + 1, a[i], j + 1, b[j], tuple(word_diff(a[i], b[j]))))
            elif has_a:
                rows.append(DiffRow("removed", i + 1, a[i], None, None))
            else:
                rows.append(DiffRow("added", None, None, j + 1, b[j]))
    return rows
