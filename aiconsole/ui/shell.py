"""The console shell: page config, the auth gate, navigation by permission, and the sidebar."""

from __future__ import annotations

import streamlit as st

from aiconsole import __version__, users
from aiconsole.actor import Actor
from aiconsole.errors import AiconsoleError
from aiconsole.permissions import allowed
from aiconsole.ui import session
from aiconsole.ui.widgets import inert

# (section, file, title, icon, permission). Only pages that work are listed.
PAGES: list[tuple[str, str, str, str, str]] = [
    ("Monitor", "pages/live_status.py", "Live Status", ":material/monitor_heart:", "live_status.view"),
    ("Administration", "pages/users.py", "Users", ":material/group:", "users.view"),
]


def _sidebar(actor: Actor) -> None:
    with st.sidebar:
        try:
            orgs = users.list_organizations(actor)
        except AiconsoleError as exc:
            st.error(str(exc))
            orgs = []
        current = next((o for o in orgs if o.id == actor.organization_id), None)
        if allowed(actor.role, "orgs.switch") and len(orgs) > 1:
            ids = [o.id for o in orgs]
            names = {o.id: o.name for o in orgs}
            chosen = st.selectbox("Organization", ids, index=ids.index(actor.organization_id),
                                  format_func=lambda i: names[i], key="org_picker")
            if chosen != actor.organization_id:
                st.session_state[session.ORG_KEY] = chosen
                st.rerun()
        elif current is not None:
            st.markdown(f"**{inert(current.name)}**")
        if current is not None and current.is_demo:
            st.badge("Demo data", icon=":material/science:", color="orange")
        st.caption(f"{inert(actor.email)} · {actor.role}")
        if st.button("Log out", key="logout", icon=":material/logout:"):
            session.log_out()
            st.rerun()
        st.caption(f"aiconsole {__version__}")


def run() -> None:
    """Entry point called by app.py on every script run."""
    st.set_page_config(page_title="aiconsole", page_icon=":material/photo_camera:", layout="wide")
    actor = session.resolve_actor()
    if actor is None:
        nav = st.navigation([st.Page("pages/login.py", title="Log in", icon=":material/login:")])
        nav.run()
        return
    sections: dict[str, list[st.Page]] = {}
    for section, path, title, icon, permission in PAGES:
        if allowed(actor.role, permission):
            sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon))
    _sidebar(actor)
    st.navigation(sections).run()
