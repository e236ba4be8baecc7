"""The login form: a local account, or SSO when configured in secrets.toml."""

from __future__ import annotations

import streamlit as st

from aiconsole.ui import browser_session, session
from aiconsole.ui.widgets import say


def render() -> None:
    """Draw the login form and log the user in on submit."""
    st.title(":material/photo_camera: aiconsole")
    st.caption("The console for your AI photo-tagging pipeline.")
    notice = st.session_state.pop(session.NOTICE_KEY, None)
    if notice:
        say("warning", "{}", notice)

    with st.form("login", border=True):
        email = st.text_input("Email", key="login_email", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        if not email.strip() or not password:
            st.error("Enter your email and password.")
        else:
            error = session.log_in(email, password)
            if error:
                say("error", "{}", error)
            else:
                st.rerun()

    if session.oidc_configured():
        st.divider()
        st.button("Log in with single sign-on", on_click=st.login, icon=":material/key:")
    browser_session.sync()
