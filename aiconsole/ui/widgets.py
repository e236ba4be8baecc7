"""Small reusable pieces: confirmed actions, flash messages, inert rendering of user text."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import streamlit as st

from aiconsole.platform.errors import AiconsoleError

FLASH_KEY = "_aiconsole_flash"


def flash(kind: str, message: str) -> None:
    """Queue a message for the next run (survives st.rerun)."""
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def show_flashes() -> None:
    """Render and clear queued messages."""
    for kind, message in st.session_state.pop(FLASH_KEY, []):
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(message)


def inert(text: Any) -> str:
    """User-supplied text made safe for markdown: HTML escaped and markdown control characters neutralised."""
    escaped = html.escape(str(text))
    for ch in "\\`*_{}[]()#+-.!|>~$":
        escaped = escaped.replace(ch, "\\" + ch)
    return escaped


def confirmed_action(
    label: str,
    *,
    key: str,
    prompt: str,
    run: Callable[..., Any],
    reason_label: str | None = None,
    disabled: bool = False,
    help: str | None = None,
    icon: str | None = None,
) -> None:
    """A button that asks for confirmation before `run` (which returns an object with `.message`).

    With `reason_label`, the confirmation asks for a reason and passes it to `run(reason)`.
    """
    pending = f"_pending_{key}"
    if st.button(label, key=key, disabled=disabled, help=help, icon=icon, width="stretch"):
        st.session_state[pending] = True
    if not st.session_state.get(pending):
        return
    with st.container(border=True):
        st.warning(prompt)
        reason = st.text_input(reason_label, key=f"{key}_reason", max_chars=500) if reason_label else None
        yes, no = st.columns(2)
        if yes.button("Confirm", key=f"{key}_confirm", type="primary", width="stretch"):
            st.session_state.pop(pending, None)
            try:
                report = run(reason) if reason_label else run()
                flash("success", getattr(report, "message", str(report)))
            except AiconsoleError as exc:
                flash("error", str(exc))
            st.rerun()
        if no.button("Cancel", key=f"{key}_cancel", width="stretch"):
            st.session_state.pop(pending, None)
            st.rerun()
