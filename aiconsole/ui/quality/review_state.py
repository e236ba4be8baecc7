"""The review screen's session state: the photo held, the reviewer's decisions on its tags before Submit, and
the undo stack of those decisions.

Every decision lives under a key of the photo's *generation* (a counter bumped whenever a new photo is shown),
so a new photo never inherits the last one's widget values: per tag an action (approve / reject / None), a
reject reason (a selectbox) and a rename (a selectbox that takes new labels); per photo the added labels. A
change pushes the state as it was onto the undo stack: buttons and keys push the state they change, widget
changes push the copy taken at the end of the previous run (their new value is already in session state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from aiconsole.quality.decisions import REJECT_REASONS, TagDecision
from aiconsole.quality.review_queue import ReviewItem, ReviewTag

ITEM, GEN, HISTORY, SHADOW = "rv_item", "rv_gen", "rv_history", "rv_shadow"
SELECTED, SKIPPED, LAST, STARTED, ACTIVE = "rv_selected", "rv_skipped", "rv_last", "rv_started", "rv_active"
SHOW_PREVIOUS, SEED, QUERY, IMAGE = "rv_show_previous", "rv_seed", "rv_query", "rv_image"
FOCUS, FOCUS_COUNT, RELEASE = "rv_focus", "rv_focus_count", "rv_release"
DEFAULT_REASON = REJECT_REASONS[0]
MAX_UNDO = 200


def item() -> ReviewItem | None:
    """The photo this session holds a claim on, if any."""
    held: ReviewItem | None = st.session_state.get(ITEM)
    return held


def _gen() -> int:
    return int(st.session_state.get(GEN, 0))


def key(part: str, tag_id: int | None = None) -> str:
    """The session-state key of one decision of the current photo's generation."""
    return f"rv_g{_gen()}_{part}" if tag_id is None else f"rv_g{_gen()}_{part}_{tag_id}"


def show(new: ReviewItem | None) -> None:
    """Hold `new` (or nothing): a new generation, an empty undo stack, the first tag selected."""
    st.session_state[ITEM] = new
    st.session_state[GEN] = _gen() + 1
    st.session_state[HISTORY] = []
    st.session_state[SELECTED] = 0
    st.session_state.pop(SHADOW, None)
    st.session_state.pop(IMAGE, None)
    if new is not None:
        for tag in new.tags:
            st.session_state.setdefault(key("act", tag.tag_id), None)
            st.session_state.setdefault(key("reason", tag.tag_id), DEFAULT_REASON)
            st.session_state.setdefault(key("rename", tag.tag_id), None)
        st.session_state.setdefault(key("added"), [])


def snapshot() -> dict[str, Any]:
    """Every decision of the current photo, by key."""
    held = item()
    if held is None:
        return {}
    keys = [key(part, t.tag_id) for t in held.tags for part in ("act", "reason", "rename")] + [key("added")]
    return {k: (list(v) if isinstance(v := st.session_state.get(k), list) else v) for k in keys}


def remember_shadow() -> None:
    """Called at the end of a run: the state a widget change next run started from."""
    st.session_state[SHADOW] = snapshot()


def push(state: dict[str, Any] | None = None) -> None:
    """Put `state` (default: the decisions now) on the undo stack."""
    history: list[dict[str, Any]] = st.session_state.setdefault(HISTORY, [])
    history.append(snapshot() if state is None else state)
    del history[:-MAX_UNDO]


def push_shadow() -> None:
    """A widget changed: the state before it goes on the undo stack."""
    shadow = st.session_state.get(SHADOW)
    if shadow is not None and shadow != snapshot():
        push(shadow)


def box_changed(widget_key: str) -> None:
    """A rename or add box took a label: remember the change, and have the next run take the cursor out of
    that box (once the value is drawn), so the next key is a shortcut again."""
    push_shadow()
    count = int(st.session_state.get(FOCUS_COUNT, 0)) + 1
    st.session_state[FOCUS_COUNT] = count
    st.session_state[RELEASE] = (widget_key, count)


def take_release() -> tuple[str, int] | None:
    """The box to take the cursor out of this run, if a change asked for it."""
    asked: tuple[str, int] | None = st.session_state.pop(RELEASE, None)
    return asked


def undo_local() -> bool:
    """Put the decisions back as they were before the last change; False when there is none."""
    history: list[dict[str, Any]] = st.session_state.get(HISTORY) or []
    if not history:
        return False
    for k, v in history.pop().items():
        st.session_state[k] = v
    return True


def rename_of(tag: ReviewTag) -> str | None:
    """The label the reviewer renames `tag` to, when it differs from the tag's own."""
    raw = st.session_state.get(key("rename", tag.tag_id))
    text = str(raw).strip().lower() if raw else ""
    return text if text and text != tag.label else None


def decided(tag: ReviewTag) -> str | None:
    """'approve', 'reject', 'rename' or None (undecided)."""
    if rename_of(tag) is not None:
        return "rename"
    act = st.session_state.get(key("act", tag.tag_id))
    return str(act) if act in ("approve", "reject") else None


def set_act(tag: ReviewTag, act: str | None) -> None:
    """Approve or reject `tag` (a rename typed for it is dropped)."""
    st.session_state[key("act", tag.tag_id)] = act
    st.session_state[key("rename", tag.tag_id)] = None


def toggle(index: int) -> None:
    """Tag number index+1 between approve and reject (undecided and renamed ones become approved); selects it."""
    held = item()
    if held is None or not 0 <= index < len(held.tags):
        return
    push()
    tag = held.tags[index]
    set_act(tag, "reject" if decided(tag) == "approve" else "approve")
    st.session_state[SELECTED] = index


def approve_rest() -> None:
    """Approve every tag still undecided."""
    held = item()
    if held is None:
        return
    push()
    for tag in held.tags:
        if decided(tag) is None:
            set_act(tag, "approve")


def reject_selected() -> None:
    """Reject the selected tag; when it is rejected already, move on to the next reason."""
    tag = selected_tag()
    if tag is None:
        return
    push()
    reason_key = key("reason", tag.tag_id)
    if decided(tag) == "reject":
        current = st.session_state.get(reason_key, DEFAULT_REASON)
        at = REJECT_REASONS.index(current) if current in REJECT_REASONS else -1
        st.session_state[reason_key] = REJECT_REASONS[(at + 1) % len(REJECT_REASONS)]
    set_act(tag, "reject")


def selected_tag() -> ReviewTag | None:
    """The tag the last number key (or toggle) picked; the first one before that."""
    held = item()
    if held is None or not held.tags:
        return None
    return held.tags[min(int(st.session_state.get(SELECTED, 0)), len(held.tags) - 1)]


def ask_focus(part: str) -> None:
    """Have the next run put the cursor in the selected tag's `part` box ("rename"), or the add box ("added")."""
    tag = selected_tag()
    if part != "added" and tag is None:
        return
    count = int(st.session_state.get(FOCUS_COUNT, 0)) + 1
    st.session_state[FOCUS_COUNT] = count
    st.session_state[FOCUS] = (key("added") if part == "added" else key(part, tag.tag_id if tag else None), count)


def take_focus() -> tuple[str, int] | None:
    """The box to put the cursor in this run, if one was asked for (asked once, taken once)."""
    asked: tuple[str, int] | None = st.session_state.pop(FOCUS, None)
    return asked


def decisions(tags: Sequence[ReviewTag]) -> list[TagDecision]:
    """The decided tags as TagDecisions (the domain refuses a submit that leaves any undecided)."""
    out = []
    for tag in tags:
        action = decided(tag)
        if action == "reject":
            out.append(TagDecision(tag_id=tag.tag_id, action="reject",
                                   reason=str(st.session_state.get(key("reason", tag.tag_id)) or DEFAULT_REASON)))
        elif action == "rename":
            out.append(TagDecision(tag_id=tag.tag_id, action="rename", label=rename_of(tag)))
        elif action == "approve":
            out.append(TagDecision(tag_id=tag.tag_id, action="approve"))
    return out


def added() -> list[str]:
    """The labels the reviewer adds to the photo."""
    return [str(label) for label in st.session_state.get(key("added")) or [] if str(label).strip()]
