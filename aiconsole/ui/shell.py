"""The console shell: page config, the auth gate and navigation by permission."""

from __future__ import annotations

import streamlit as st

from aiconsole.platform.permissions import allowed
from aiconsole.ui import login, session

# (section, file, title, icon, permission). Only pages that work are listed.
PAGES: list[tuple[str, str, str, str, str]] = [
    ("Monitor", "pages/live_status.py", "Live Status", ":material/monitor_heart:", "live_status.view"),
    ("Control", "pages/pipeline.py", "Pipeline", ":material/tune:", "pipeline.view"),
    ("Control", "pages/prompts.py", "Prompts", ":material/edit_note:", "pipeline.view"),
    ("Control", "pages/providers.py", "Providers", ":material/key:", "pipeline.view"),
    ("Administration", "pages/users.py", "Users", ":material/group:", "users.view"),
    ("Administration", "pages/audit_log.py", "Audit log", ":material/history:", "audit.view"),
]


def run() -> None:
    """Entry point called by app.py on every script run."""
    st.set_page_config(page_title="aiconsole", page_icon=":material/photo_camera:", layout="wide")
    actor = session.resolve_actor()
    if actor is None:
        st.navigation([st.Page(login.render, title="Log in", icon=":material/login:", url_path="login")],
                      position="hidden").run()
        return
    sections: dict[str, list[st.Page]] = {}
    for section, path, title, icon, permission in PAGES:
        if allowed(actor.role, permission):
            sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon))
    st.navigation(sections).run()
