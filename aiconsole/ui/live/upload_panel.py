"""Live Status's upload panel: queue photos, see each file's verdict, and open a photo that was queued.

The expander keeps its open state in the session (a keyed, state-tracking expander), so the rerun after
Confirm shows the result where the person was looking instead of collapsing the panel.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from aiconsole.live import photos
from aiconsole.pipeline import intake
from aiconsole.pipeline.images import human_size
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.ui.widgets import Markdown, confirmed_action, flash, say

PANEL_KEY, VERDICTS_KEY, OPEN_KEY = "upload_panel", "upload_verdicts", "upload_open_photo"


def render(actor: Actor, *, refused: Markdown | None) -> None:
    """The expander: the form (or why the role may not upload), then the last upload's result."""
    with st.expander("Upload photos to the queue", icon=":material/upload:", key=PANEL_KEY, on_change="rerun"):
        if refused:
            say("info", "{}", refused)
            return
        _form(actor)
        verdicts: list[dict[str, Any]] = st.session_state.get(VERDICTS_KEY) or []
        if verdicts:
            st.dataframe([{k: v for k, v in row.items() if k != "photo_id"} for row in verdicts],
                         hide_index=True, width="stretch")
            _opener(actor, verdicts)


def _form(actor: Actor) -> None:
    files = st.file_uploader("Photos (JPEG, PNG, WEBP, GIF, BMP, TIFF)", accept_multiple_files=True,
                             key="upload_files")
    priority = st.slider("Priority", 0, intake.MAX_PRIORITY, 0, key="upload_priority",
                         help="Higher priority photos are claimed first.")
    if files:
        total = sum(f.size for f in files)
        label = f"{len(files):,} file" if len(files) == 1 else f"{len(files):,} files"
        confirmed_action(f"Queue {label} ({human_size(total)})", key="upload",
                         icon=":material/add_photo_alternate:",
                         prompt="Each file is checked (type from its content, size, pixels, duplicates) "
                                "before it is queued.",
                         run=lambda: _enqueue(actor, files, priority))


def _enqueue(actor: Actor, files: list[UploadedFile], priority: int) -> intake.EnqueueReport:
    report = intake.enqueue_files(actor, [(f.name, f.getvalue()) for f in files], priority=priority)
    st.session_state[VERDICTS_KEY] = [
        {"file": v.filename, "outcome": v.outcome, "detail": v.message, "photo_id": v.photo_id}
        for v in report.verdicts
    ]
    opened = next((v.photo_id for v in report.verdicts if v.photo_id is not None), None)
    st.session_state[OPEN_KEY] = opened
    if report.count("rejected"):
        flash("warning", "Some files were not queued: see the table under Upload photos.")
    return report


def _opener(actor: Actor, verdicts: list[dict[str, Any]]) -> None:
    """Pick one of the photos just queued (or found already known) and show where it stands now."""
    names = {int(v["photo_id"]): str(v["file"]) for v in verdicts if v.get("photo_id") is not None}
    if not names:
        return
    if st.session_state.get(OPEN_KEY) not in names:
        st.session_state[OPEN_KEY] = next(iter(names))
    photo_id = st.selectbox("Open a photo", list(names), key=OPEN_KEY,
                            format_func=lambda i: f"#{i:,} · {names.get(i, '')}")
    try:
        view = photos.photo_view(actor, photo_id=int(photo_id))
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    pic, facts = st.columns([1, 2])
    if view.thumbnail is not None:
        pic.image(view.thumbnail, caption=None, width="content")
    else:
        say("warning", "{}", view.thumbnail_problem, where=pic)
    with facts:
        say("markdown", "**{}** — {}", view.filename, view.status.replace("_", " "))
        say("caption", "photo #{} · {} · {} × {} px · {}", f"{view.id:,}", human_size(view.byte_size),
            f"{view.width:,}", f"{view.height:,}", view.content_type)
        say("caption", "priority {} · attempts {} · queued {}", view.priority, view.attempts,
            fmt.ago(view.created_at, view.as_of))
        if view.last_error:
            say("caption", "last error: {}", view.last_error)

