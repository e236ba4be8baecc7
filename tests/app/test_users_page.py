"""The Users page through AppTest: add a user, refuse bad input with its reason, change role, disable."""

from __future__ import annotations

import re

import pytest

from aiconsole.admin import users
from aiconsole.platform import auth
from aiconsole.platform.errors import AuthError
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown


def test_admin_adds_changes_and_disables_a_user(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    at.switch_page("pages/users.py").run()
    assert not at.exception

    at.text_input(key="new_email").input("not-an-email")
    at.text_input(key="new_password").input("long-enough-pw")
    submit = next(b for b in at.button if b.label == "Add user")
    submit.click().run()
    assert any("email" in shown(e.value).lower() for e in at.error), [shown(e.value) for e in at.error]

    at.text_input(key="new_email").input("sam@example.com")
    at.text_input(key="new_name").input("Sam <script>alert(1)</script>")
    at.selectbox(key="new_role").select("analyst")
    at.text_input(key="new_password").input("short")
    next(b for b in at.button if b.label == "Add user").click().run()
    assert any("too short" in shown(e.value) for e in at.error)

    at.text_input(key="new_email").input("sam@example.com")
    at.text_input(key="new_password").input("long-enough-pw")
    next(b for b in at.button if b.label == "Add user").click().run()
    assert any("Added sam@example.com as analyst" in shown(s.value) for s in at.success)

    actor = at.session_state[ACTOR_KEY]
    sam = next(u for u in users.list_users(actor) if u.email == "sam@example.com")
    at.selectbox(key="target_user").select(sam.id).run()
    at.selectbox(key="target_role").select("reviewer").run()
    at.button(key="change_role").click().run()
    assert any("is now reviewer" in shown(s.value) for s in at.success)
    at.selectbox(key="target_user").select(sam.id).run()
    at.button(key="toggle_active").click().run()
    sam = next(u for u in users.list_users(actor) if u.email == "sam@example.com")
    assert sam.role == "reviewer" and not sam.is_active


def test_developer_cannot_open_users(app_as) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = app_as("developer")
    page = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "pages" / "users.py"))
    page.session_state[ACTOR_KEY] = at.session_state[ACTOR_KEY]
    page.run()
    assert any("cannot" in shown(e.value) for e in page.error)
    assert not page.dataframe


def test_the_table_reads_locks_and_logins_in_the_organizations_zone(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    actor = at.session_state[ACTOR_KEY]
    users.create_user(actor, email="lee.locked@example.com", display_name="Lee", role="viewer",
                      password="long-enough-pw")
    for _ in range(5):  # the default lockout: 5 failed logins
        with pytest.raises(AuthError):
            auth.login(email="lee.locked@example.com", password="wrong-password")
    at.switch_page("pages/users.py").run()
    table = at.dataframe[0].value.set_index("email")
    lee, me = table.loc["lee.locked@example.com"], table.loc[actor.email]
    # Not "None" / NaT / "+00:00": a moment in the demo organization's zone (New York), or what is missing.
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", lee["locked until"]), lee["locked until"]
    assert lee["last login"] == "never"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", me["last login"]) and me["locked until"] == "—"
    assert list(table.columns)[:5] == ["name", "role", "active", "last login", "locked until"]
