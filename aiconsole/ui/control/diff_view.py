"""Prompt diffs on screen: the side-by-side table, and lines with their changed words highlighted.

Prompts are user text, so a highlighted line is built here from escaped text only (`html.escape` on every
piece; the markup around it is ours) and shown with st.html, which runs no script. No user text reaches
markdown from this module.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any, Literal

import pandas as pd
import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.prompts.diffs import ADDED, EQUAL, REMOVED, DiffRow, Segment
from aiconsole.ui.widgets import say

Side = Literal["left", "right", "both"]
# Colour and a line (struck through / underlined) both mark a change, so it reads without colour too.
_MARK = {REMOVED: ("del", "background:#ffebe9;color:#82071e;text-decoration:line-through"),
         ADDED: ("ins", "background:#dafbe1;color:#116329;text-decoration:underline")}
_BOX = ("white-space:pre-wrap;overflow-wrap:anywhere;font-family:'Source Code Pro',monospace;font-size:0.85rem;"
        "line-height:1.55;padding:0.5rem 0.75rem;border:1px solid rgba(128,128,128,0.35);border-radius:0.5rem")
_QUIET = "color:#8a8a8a"
MAX_LINES_IN_FULL = 50


def segments_html(segments: Iterable[Segment], *, side: Side = "both", empty: str = "(nothing)") -> str:
    """The segments as one escaped block: the left side drops added text, the right side drops removed text."""
    pieces = []
    for seg in segments:
        if (side == "left" and seg.kind == ADDED) or (side == "right" and seg.kind == REMOVED) or not seg.text:
            continue
        text = html.escape(seg.text, quote=True)
        if seg.kind in _MARK:
            tag, style = _MARK[seg.kind]
            pieces.append(f'<{tag} style="{style}">{text}</{tag}>')
        elif seg.kind == EQUAL:
            pieces.append(text)
        else:  # context around a hunk
            pieces.append(f'<span style="{_QUIET}">{text}</span>')
    body = "".join(pieces) or f'<span style="{_QUIET}">{html.escape(empty)}</span>'
    return f'<div style="{_BOX}">{body}</div>'


def show_segments(segments: Iterable[Segment], *, side: Side = "both", where: Any = None,
                  empty: str = "(nothing)") -> None:
    """Render `segments_html` in `where` (a column or container; the page when None)."""
    (st if where is None else where).html(segments_html(segments, side=side, empty=empty))


def show_diff(rows: list[DiffRow], left: str, right: str) -> None:
    """The diff as a table, then each differing line in full side by side, its changed words highlighted."""
    st.dataframe(pd.DataFrame([(r.kind, r.left_no or "", r.left or "", r.right_no or "", r.right or "") for r in rows],
                              columns=["change", "#", left, "# ", right]), hide_index=True, width="stretch")
    changed = [r for r in rows if r.kind != "equal"]
    if not changed:
        return
    with st.expander(f"Differing lines in full ({len(changed)})", expanded=len(changed) <= 5):
        c1, c2 = st.columns(2)
        say("caption", "{}", left, where=c1)
        say("caption", "{}", right, where=c2)
        for r in changed[:MAX_LINES_IN_FULL]:
            c1, c2 = st.columns(2)
            words = r.words or ((Segment(REMOVED, r.left),) if r.left is not None else ()) + (
                (Segment(ADDED, r.right),) if r.right is not None else ())
            show_segments(words, side="left", where=c1, empty=f"(no line {r.right_no} here)")
            show_segments(words, side="right", where=c2, empty=f"(line {r.left_no} removed)")
        if len(changed) > MAX_LINES_IN_FULL:
            say("caption", "{} more in the table above.",
                fmt.plural(len(changed) - MAX_LINES_IN_FULL, "differing line"))
