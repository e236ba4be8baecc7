"""Three-way merge of prompt texts, word by word: the version a draft started from (base), a version someone
else saved meanwhile (theirs), and the draft (mine).

The texts are cut into word tokens (`aiconsole.prompts.diffs.tokens`) and each side is matched against the
base with diff-match-patch; where the base is unchanged on both sides the texts are in step, and each
stretch between such places is one hunk: unchanged, changed by one side (that side's text is taken), changed
alike by both, or changed differently by both (a conflict, which only the person resolves). This is diff3's
rule (Khanna, Kunal and Pierce, "A Formal Investigation of Diff3"), on words instead of lines because prompts
are one long line each. Nothing here saves anything: the editor offers the result for review.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from aiconsole.prompts.diffs import matching_blocks, tokens

UNCHANGED, THEIRS, MINE, BOTH, CONFLICT = "unchanged", "theirs", "mine", "both", "conflict"


@dataclass(frozen=True)
class Hunk:
    """One stretch of the merge: its kind and its text in the base, their version and the draft."""

    kind: str
    base: str
    theirs: str
    mine: str

    @property
    def merged(self) -> str | None:
        """The hunk's text in the merge, or None for a conflict (the person decides)."""
        return {UNCHANGED: self.base, THEIRS: self.theirs, MINE: self.mine, BOTH: self.mine}.get(self.kind)

    @property
    def digest(self) -> str:
        """A short stable name for the hunk's content (a widget key survives unrelated edits of the draft)."""
        raw = "\x00".join((self.kind, self.base, self.theirs, self.mine)).encode()
        return hashlib.sha256(raw).hexdigest()[:12]


@dataclass(frozen=True)
class Merge:
    """The hunks of a three-way merge, in text order."""

    hunks: tuple[Hunk, ...]

    @property
    def conflicts(self) -> list[int]:
        """Indexes of the conflicting hunks."""
        return [i for i, h in enumerate(self.hunks) if h.kind == CONFLICT]

    @property
    def clean(self) -> bool:
        """True when no hunk conflicts: the merge is a text as it stands."""
        return not self.conflicts

    def changes(self, kind: str) -> list[Hunk]:
        """The hunks of one kind (THEIRS, MINE, BOTH or CONFLICT)."""
        return [h for h in self.hunks if h.kind == kind]

    def around(self, index: int, words: int = 6) -> tuple[str, str]:
        """A few words of the merge's text before and after hunk `index` (other conflicts as in the base)."""
        def side(hunks: tuple[Hunk, ...]) -> list[str]:
            return tokens("".join(h.base if h.merged is None else h.merged for h in hunks))

        n = 2 * words  # a word and the space after it
        before, after = side(self.hunks[max(0, index - 3):index]), side(self.hunks[index + 1:index + 4])
        return ("…" if len(before) > n else "") + "".join(before[-n:]), "".join(after[:n]) + (
            "…" if len(after) > n else "")

    def text(self, resolutions: Mapping[int, str] | None = None) -> str:
        """The merged text, each conflict replaced by its resolution (hunk index -> text).

        Raises ValueError naming the hunks without one: a conflict is never settled by default.
        """
        resolutions = resolutions or {}
        missing = [i for i in self.conflicts if i not in resolutions]
        if missing:
            raise ValueError(f"unresolved conflicts: {missing}")
        return "".join(resolutions[i] if h.kind == CONFLICT else str(h.merged) for i, h in enumerate(self.hunks))


def _sync_regions(base: list[str], theirs: list[str], mine: list[str]) -> list[tuple[int, int, int, int, int, int]]:
    """Stretches of the base unchanged on both sides: (base start, end, theirs start, end, mine start, end)."""
    ours, yours = matching_blocks(base, theirs), matching_blocks(base, mine)
    out = []
    i = j = 0
    while i < len(ours) and j < len(yours):
        a_base, a_at, a_len = ours[i]
        b_base, b_at, b_len = yours[j]
        start, end = max(a_base, b_base), min(a_base + a_len, b_base + b_len)
        if start < end:
            out.append((start, end, a_at + start - a_base, a_at + end - a_base, b_at + start - b_base,
                        b_at + end - b_base))
        if a_base + a_len < b_base + b_len:
            i += 1
        else:
            j += 1
    out.append((len(base), len(base), len(theirs), len(theirs), len(mine), len(mine)))
    return out


def _kind(base: str, theirs: str, mine: str) -> str:
    if theirs == mine:
        return UNCHANGED if theirs == base else BOTH
    if theirs == base:
        return MINE
    if mine == base:
        return THEIRS
    return CONFLICT


def _coalesce(hunks: list[Hunk]) -> list[Hunk]:
    """Neighbours of one kind as one hunk; conflicts separated only by white space as one conflict."""
    out: list[Hunk] = []
    for h in hunks:
        if out and out[-1].kind == h.kind:
            p = out.pop()
            h = Hunk(h.kind, p.base + h.base, p.theirs + h.theirs, p.mine + h.mine)
        elif (len(out) >= 2 and h.kind == CONFLICT and out[-2].kind == CONFLICT and out[-1].kind == UNCHANGED
              and not out[-1].base.strip()):
            gap, p = out.pop(), out.pop()
            h = Hunk(CONFLICT, p.base + gap.base + h.base, p.theirs + gap.base + h.theirs, p.mine + gap.base + h.mine)
        out.append(h)
    return out


def _shared_start(seqs: list[list[str]]) -> int:
    n = 0
    while all(n < len(q) for q in seqs) and len({q[n] for q in seqs}) == 1:
        n += 1
    return n


def _trim(h: Hunk) -> list[Hunk]:
    """A conflict without the tokens both sides share at its edges ("\nTheirs." and "\nMine." share "\n").

    With a base there, only what all three share is unchanged; on an empty base, what both inserted is theirs
    and mine alike. What is left is classified again (one side may then be the only one that changed)."""
    if h.kind != CONFLICT:
        return [h]
    b, t, m = tokens(h.base), tokens(h.theirs), tokens(h.mine)
    sides = [t, m, b] if b else [t, m]
    head = _shared_start(sides)
    tail = _shared_start([q[head:][::-1] for q in sides])
    if not head and not tail:
        return [h]
    kind = UNCHANGED if b else BOTH

    def cut(i: int, j: int) -> tuple[str, str, str]:  # j counts from the end
        return "".join(b[i:len(b) - j]), "".join(t[i:len(t) - j]), "".join(m[i:len(m) - j])

    middle = cut(head, tail)
    out = [Hunk(kind, *[x[:len(x) - len(y)] for x, y in zip(cut(0, tail), middle, strict=True)])] if head else []
    if any(middle):
        out.append(Hunk(_kind(*middle), *middle))
    if tail:
        out.append(Hunk(kind, *[x[len(y):] for x, y in zip(cut(head, 0), middle, strict=True)]))
    return out


def merge3(base: str, theirs: str, mine: str) -> Merge:
    """Merge `mine` and `theirs`, both edited from `base`, word by word."""
    b, t, m = tokens(base), tokens(theirs), tokens(mine)
    hunks: list[Hunk] = []
    zb = zt = zm = 0
    for sb, eb, st, et, sm, em in _sync_regions(b, t, m):
        parts = "".join(b[zb:sb]), "".join(t[zt:st]), "".join(m[zm:sm])
        if any(parts):
            hunks.append(Hunk(_kind(*parts), *parts))
        if eb > sb:
            same = "".join(b[sb:eb])
            hunks.append(Hunk(UNCHANGED, same, same, same))
        zb, zt, zm = eb, et, em
    return Merge(tuple(_coalesce([t for h in hunks for t in _trim(h)])))
