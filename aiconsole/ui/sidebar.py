"""The sidebar every page draws: organization (picker for platform admins), demo badge, user, logout."""

from __future__ import annotations

import streamlit as st

from aiconsole import __version__
from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.providers.emulation import emulator_url
from aiconsole.ui import browser_session, session
from aiconsole.ui.widgets import say


def render(actor: Actor) -> None:
    """Draw the sidebar for `actor`."""
    with st.sidebar:
        try:
            orgs = users.list_organizations(actor)
        except AiconsoleError as exc:
            say("error", "{}", exc)
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
            say("markdown", "**{}**", current.name)
        if current is not None and current.is_demo:
            st.badge("Demo data", icon=":material/science:", color="orange")
            if emulator_url(is_demo=True):
                st.badge("Google calls emulated", icon=":material/dns:", color="violet",
                         help="google-vision and gemini answers come from the local emulator (aiconsole up "
                              "--emulate), not from Google.")
        say("caption", "{} · {}", actor.email, actor.role)
        if st.button("Log out", key="logout", icon=":material/logout:"):
            session.log_out()
            st.rerun()
        say("caption", "aiconsole {}", __version__)
        browser_session.sync()
