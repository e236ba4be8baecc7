"""The photo held, large (and at every pixel with Zoom), and its tags: each with its number key, confidence
bar, rule verdict and decision (approve / reject with a reason / rename), then the labels to add. A photo of
the disagreement order also shows its two least alike sources, their labels and the Jaccard similarity."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import disagreement_reads
from aiconsole.quality import review_reads as reads
from aiconsole.quality.decisions import REJECT_REASONS
from aiconsole.quality.review_queue import ReviewItem, ReviewTag
from aiconsole.ui.quality import review_keys as keys
from aiconsole.ui.quality import review_state as state
from aiconsole.ui.widgets import md, md_join, say

ZOOM_KEY = "rv_zoom"
ZOOM_HEIGHT = 720  # px of the scrolling frame a zoomed photo sits in
LABEL_OPTIONS = 300  # labels offered by each rename and add box (most used first)
DECISION_NAMES = {"approve": "approve", "reject": "reject", "rename": "rename", None: "undecided"}
DECISION_ICONS = {"approve": ":material/check_circle:", "reject": ":material/cancel:", "rename": ":material/edit:",
                  None: ":material/radio_button_unchecked:"}
VERDICT_NAMES = {"accepted": "accept", "needs_review": "needs review", "rejected": "reject"}
PAIR_KEY = "rv_pair"  # (photo id, its PairView or None), read once per photo held


def photo(actor: Actor, held: ReviewItem) -> None:
    """The photo, its facts, and the zoom switch (the JPEG is kept for the photo's reruns)."""
    zoom = st.toggle("Zoom: every pixel", key=ZOOM_KEY, help="Shows the photo at full resolution; scroll to pan.")
    cached = st.session_state.get(state.IMAGE)
    if cached is None or cached[:2] != (held.photo_id, zoom):
        try:
            cached = (held.photo_id, zoom, reads.photo_image(actor, photo_id=held.photo_id, zoom=zoom).jpeg)
        except AiconsoleError as exc:
            cached = (held.photo_id, zoom, None)
            say("warning", "The photo cannot be shown: {} Its tags can still be decided.", exc)
        st.session_state[state.IMAGE] = cached
    if cached[2] is not None:
        if zoom:
            with st.container(height=ZOOM_HEIGHT):
                st.image(cached[2], width="content")
        else:
            st.image(cached[2], width="stretch")
    left = (held.expires_at - datetime.now(UTC)).total_seconds()
    say("caption", "photo #{} · {} · {} × {} px · arrived {} · yours for {} more", f"{held.photo_id:,}",
        held.filename, f"{held.width:,}", f"{held.height:,}", fmt.ago(held.created_at, datetime.now(UTC)),
        fmt.duration(left))


def sources(actor: Actor, held: ReviewItem) -> None:
    """The photo's two least alike sources side by side: who produced which labels, and how alike they are."""
    cached = st.session_state.get(PAIR_KEY)
    if cached is None or cached[0] != held.photo_id:
        cached = (held.photo_id, disagreement_reads.photo_pair(actor, photo_id=held.photo_id))
        st.session_state[PAIR_KEY] = cached
    pair = cached[1]
    if pair is None:
        say("caption", "This photo no longer has two sources to compare.")
        return
    with st.container(border=True):
        say("markdown", "**Sources disagree**: Jaccard similarity {} ({} of their labels in common){}",
            fmt.number(pair.jaccard, 2), fmt.pct(pair.jaccard, 0),
            md(" · lowest of {} sources", pair.sources) if pair.sources > 2 else "")
        for side, col in zip((pair.a, pair.b), st.columns(2), strict=True):
            say("caption", "{} · {}{}", side.provider, side.model,
                md(" · prompt {}", side.prompt_version) if side.prompt_version else "", where=col)
            say("markdown", "{}", md_join(side.labels) if side.labels else "no labels", where=col)


def tag_rows(actor: Actor, held: ReviewItem) -> None:
    """One row per tag, then the labels to add."""
    if not held.tags:
        say("info", "This photo has no tag left to decide: add the labels it should have, then submit.")
    labels = reads.known_labels(actor, limit=LABEL_OPTIONS)
    selected = int(st.session_state.get(state.SELECTED, 0))
    rename, add = st.columns(2)
    rename.button("Rename selected", key=keys.RENAME, icon=":material/edit:", width="stretch", on_click=state.ask_focus,
                  args=("rename",), disabled=not held.tags, help="e: type the new label, Enter, Esc")
    add.button("Add a tag", key=keys.ADD, icon=":material/add:", width="stretch", on_click=state.ask_focus,
               args=("added",), help="t: type the label, Enter adds it, Esc")
    for index, tag in enumerate(held.tags):
        _row(index, tag, labels, selected=index == selected)
    add_key = state.key("added")
    chosen = [str(v) for v in st.session_state.get(add_key) or []]
    st.multiselect("Add missing tags", list(dict.fromkeys([*chosen, *labels])), key=add_key,
                   accept_new_options=True, placeholder="type a label, Enter adds it", on_change=state.box_changed,
                   args=(add_key,),
                   help="Labels the photo has that no tag names; type a new one or pick one the organization uses.")


def _row(index: int, tag: ReviewTag, labels: list[str], *, selected: bool) -> None:
    decided = state.decided(tag)
    number = index + 1
    with st.container(border=True):
        toggle, name = st.columns(2, vertical_alignment="center")
        toggle.button(md("{} · {}", number, DECISION_NAMES[decided]), icon=DECISION_ICONS[decided],
                      key=keys.toggle_key(number) if number <= keys.MAX_NUMBERED else f"rv_toggle_t{tag.tag_id}",
                      type="primary" if selected else "secondary", width="stretch", on_click=state.toggle,
                      args=(index,), help=md("Between approve and reject (key {}).", number)
                      if number <= keys.MAX_NUMBERED else "Between approve and reject.")
        renamed = state.rename_of(tag)
        if renamed:
            say("markdown", "**{}** → **{}**", tag.label, renamed, where=name)
        else:
            say("markdown", "**{}**", tag.label, where=name)
        st.progress(min(max(tag.confidence, 0.0), 1.0),
                    text=md("confidence {} · rule: {}", fmt.pct(tag.confidence, 0),
                            VERDICT_NAMES.get(tag.verdict, tag.verdict)))
        if decided == "reject":
            st.selectbox("Reason", REJECT_REASONS, format_func=lambda r: "reason: " + r.replace("_", " "),
                         key=state.key("reason", tag.tag_id), on_change=state.push_shadow,
                         label_visibility="collapsed")
        current = st.session_state.get(state.key("rename", tag.tag_id))
        options = list(dict.fromkeys([*([str(current)] if current else []), *labels]))
        rename_key = state.key("rename", tag.tag_id)
        st.selectbox("Rename to", options, key=rename_key, accept_new_options=True, placeholder="rename to…",
                     on_change=state.box_changed, args=(rename_key,), label_visibility="collapsed")
