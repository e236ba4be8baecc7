"""The three-way view after a refused save: the base, the version someone saved meanwhile, and the draft.

A merge without conflicts is offered as the merged text; each conflict is shown side by side and the person
keeps their version, theirs, or writes the words. Every choice that drops text says which. Nothing is saved
here: the merged text goes into the editor on the newer version, and the person saves it from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.prompts.diffs import ADDED, EQUAL, REMOVED, Segment, word_diff
from aiconsole.prompts.merge import BOTH, MINE, THEIRS, Merge, merge3
from aiconsole.ui.control.diff_view import show_segments
from aiconsole.ui.widgets import say

CONTEXT = "context"
KEEP = {"theirs": "Their version", "mine": "My version", "edit": "Write it myself"}


@dataclass(frozen=True)
class Conflict:
    """A refused save as the editor keeps it: where the draft started and what was saved meanwhile."""

    prompt_id: int
    message: str
    base_version: int
    base_content: str
    latest_version: int
    latest_content: str
    latest_author: str


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _hunk(before: str, text: str, after: str, kind: str) -> list[Segment]:
    return [Segment(CONTEXT, before), Segment(kind, text), Segment(CONTEXT, after)]


def _overview(c: Conflict, draft: str, merged: Merge) -> None:
    theirs, mine = len(merged.changes(THEIRS)) + len(merged.changes(BOTH)), len(merged.changes(MINE))
    if merged.clean:
        say("success", "No conflicts: the merge keeps v{}'s {} and your {}. Review it below, "
            "take it into the editor on v{}, then save.", c.latest_version, fmt.plural(theirs, "change"),
            fmt.plural(mine, "change"), c.latest_version,
            icon=":material/merge:")
    else:
        say("warning", "{}: v{} and your draft changed the same words. Choose what to keep for each; "
            "the other {} from v{} and {} of yours are merged.", fmt.plural(len(merged.conflicts), "conflict"),
            c.latest_version, fmt.plural(theirs, "change"), c.latest_version, fmt.count(mine),
            icon=":material/call_split:")
    cols = st.columns(3)
    say("caption", "v{}: where you started", c.base_version, where=cols[0])
    say("caption", "v{} by {}: changes from v{}", c.latest_version, c.latest_author, c.base_version, where=cols[1])
    say("caption", "Your draft: changes from v{}", c.base_version, where=cols[2])
    show_segments([Segment(EQUAL, c.base_content)], where=cols[0])
    show_segments(word_diff(c.base_content, c.latest_content), where=cols[1])
    show_segments(word_diff(c.base_content, draft), where=cols[2])


def _resolve(c: Conflict, merged: Merge) -> dict[int, str]:
    """One choice per conflict (none by default); returns the resolved ones (hunk index -> text)."""
    resolutions: dict[int, str] = {}
    for n, i in enumerate(merged.conflicts, start=1):
        h = merged.hunks[i]
        before, after = merged.around(i)
        with st.container(border=True):
            say("markdown", "**Conflict {} of {}**", n, len(merged.conflicts))
            cols = st.columns(3)
            for where, title, text, kind in ((cols[0], f"v{c.base_version}", h.base, EQUAL),
                                             (cols[1], f"v{c.latest_version} (theirs)", h.theirs, REMOVED),
                                             (cols[2], "your draft", h.mine, ADDED)):
                say("caption", "{}", title, where=where)
                show_segments(_hunk(before, text, after, kind), where=where, empty="(deleted)")
            choice = st.radio("Keep", list(KEEP), index=None, horizontal=True, key=f"merge_choice_{h.digest}",
                              format_func=KEEP.__getitem__)
            theirs, mine = _short(h.theirs) or "(their deletion)", _short(h.mine) or "(your deletion)"
            if choice == "theirs":
                resolutions[i] = h.theirs
                say("caption", "v{}'s text stays; yours (“{}”) is dropped.", c.latest_version, mine)
            elif choice == "mine":
                resolutions[i] = h.mine
                say("caption", "Your text replaces v{}'s “{}”.", c.latest_version, theirs)
            elif choice == "edit":
                resolutions[i] = st.text_area("Your words for this place", value=h.mine,
                                              key=f"merge_edit_{h.digest}", height=80)
                say("caption", "Your words replace v{}'s “{}” and your draft's “{}”.", c.latest_version, theirs,
                    mine)
    return resolutions


def merge_view(c: Conflict, draft: str) -> str | None:
    """The three-way view; returns the merged text when the person takes it into the editor, else None."""
    merged = merge3(c.base_content, c.latest_content, draft)
    _overview(c, draft, merged)
    resolutions = _resolve(c, merged)
    missing = len(merged.conflicts) - len(resolutions)
    if missing:
        say("info", "Choose what to keep for {} more to see the merged text.", fmt.plural(missing, "conflict"))
        st.button(f"Take the merged text into the editor on v{c.latest_version}", key="prompt_merge_take",
                  disabled=True, icon=":material/merge:")
        return None
    text = merged.text(resolutions)
    say("caption", "The merged text (changes from v{} marked):", c.latest_version)
    show_segments(word_diff(c.latest_content, text))
    if st.button(f"Take the merged text into the editor on v{c.latest_version}", key="prompt_merge_take",
                 type="primary", icon=":material/merge:"):
        return text
    return None
