"""Administration: the organization's users, their roles, enabling and disabling accounts."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from aiconsole.admin import users
from aiconsole.admin.users import UserRow
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import ROLE_DESCRIPTIONS, allowed
from aiconsole.ui.widgets import flash, say

# px: on a 1280-px window (820 px of table beside the sidebar) everything up to the lock is in view.
COLUMN_WIDTHS = {"email": 220, "name": 120, "role": 110, "active": 60, "last login": 140, "locked until": 140}


def render(actor: Actor) -> None:
    """The users table; for users.manage, the add form and the change-an-account panel."""
    rows = users.list_users(actor)
    if not rows:
        st.info("This organization has no users yet. Add the first one below.")
    else:
        tz, now = users.organization_timezone(actor), datetime.now(UTC)
        frame = pd.DataFrame(
            [{"email": u.email, "name": u.display_name, "role": u.role, "active": u.is_active,
              "last login": fmt.when(u.last_login_at, tz, seconds=False, missing="never"),
              # A lock that has run out is no lock: only a current one is worth a column entry.
              "locked until": fmt.when(u.locked_until if u.locked_until and u.locked_until > now else None,
                                       tz, seconds=False),
              "sign-in": "password" if u.has_password else "single sign-on"} for u in rows]
        )
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={name: st.column_config.Column(width=px) for name, px in COLUMN_WIDTHS.items()})
    if not allowed(actor.role, "users.manage"):
        return
    roles = [r for r in ROLE_DESCRIPTIONS if r != "platform_admin" or allowed(actor.role, "orgs.switch")]
    left, right = st.columns(2)
    with left, st.form("add_user", border=True):
        _add_form(actor, roles)
    with right, st.container(border=True):
        _change_panel(actor, roles, rows)


def _add_form(actor: Actor, roles: list[str]) -> None:
    st.subheader("Add a user")
    email = st.text_input("Email", key="new_email")
    name = st.text_input("Display name", key="new_name")
    role = st.selectbox("Role", roles, index=roles.index("viewer"), key="new_role",
                        format_func=lambda r: f"{r} — {ROLE_DESCRIPTIONS[r]}")
    sso = st.checkbox("Single sign-on only (no password)", key="new_sso")
    password = st.text_input("Initial password (8+ characters)", type="password", key="new_password")
    if st.form_submit_button("Add user", type="primary"):
        try:
            created = users.create_user(actor, email=email, display_name=name, role=role,
                                        password=None if sso else password)
            flash("success", "Added {} as {}.", created.email, created.role)
            for key in ("new_email", "new_name", "new_password"):  # a refused form keeps what was typed
                st.session_state.pop(key, None)
            st.rerun()
        except AiconsoleError as exc:
            say("error", "{}", exc)


def _change_panel(actor: Actor, roles: list[str], rows: list[UserRow]) -> None:
    st.subheader("Change an account")
    others = [u for u in rows if u.id != actor.user_id]
    if not others:
        st.caption("There is nobody else in this organization yet.")
        return
    by_id = {u.id: u for u in others}
    target_id = st.selectbox("User", list(by_id), key="target_user",
                             format_func=lambda i: f"{by_id[i].email} ({by_id[i].role}"
                             + (", disabled)" if not by_id[i].is_active else ")"))
    target = by_id[target_id]
    new_role = st.selectbox("Role", roles, key="target_role",
                            index=roles.index(target.role) if target.role in roles else 0)
    c1, c2 = st.columns(2)
    if c1.button("Change role", key="change_role", disabled=new_role == target.role):
        try:
            users.set_role(actor, user_id=target.id, role=new_role)
            flash("success", "{} is now {}.", target.email, new_role)
            st.rerun()
        except AiconsoleError as exc:
            say("error", "{}", exc)
    label = "Disable" if target.is_active else "Enable"
    if c2.button(f"{label} account", key="toggle_active"):
        try:
            users.set_active(actor, user_id=target.id, active=not target.is_active)
            flash("success", "{} is {}.", target.email, "disabled" if target.is_active else "enabled")
            st.rerun()
        except AiconsoleError as exc:
            say("error", "{}", exc)
