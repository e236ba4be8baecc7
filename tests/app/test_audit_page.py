"""The Audit log page through AppTest: filter, read a change's diff, revert a role change; only admins get in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aiconsole.admin import users
from aiconsole.platform import audit
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/audit_log.py"


def test_admin_filters_reads_the_diff_and_reverts_a_role_change(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    actor = at.session_state[ACTOR_KEY]
    sam = users.create_user(actor, email="sam.audit@example.com", display_name="Sam <b>bold</b> **x**",
                            role="viewer", password=None)
    users.set_role(actor, user_id=sam.id, role="analyst")
    change = audit.list_entries(actor, action="user.set_role", limit=1)[0]

    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.dataframe, "the entries table is drawn"
    at.selectbox(key="f_action").select("user.set_role").run()
    at.text_input(key="f_search").input("sam.audit").run()
    table = at.dataframe[0].value
    assert list(table["entry"]) == [change.id]
    assert table["summary"].iloc[0] == "Changed sam.audit@example.com's role from viewer to analyst"

    diff = at.dataframe[1].value
    assert diff.to_dict("records") == [{"field": "role", "before": "viewer", "after": "analyst"}]

    at.button(key=f"revert_{change.id}").click().run()
    assert any("Restore the state before" in shown(w.value) for w in at.warning)
    at.button(key=f"revert_{change.id}_confirm").click().run()
    assert not at.exception, at.exception
    successes = [shown(s.value) for s in at.success]
    assert any(f"Reverted entry #{change.id}" in s for s in successes), successes
    assert next(u for u in users.list_users(actor) if u.id == sam.id).role == "viewer"

    # The reverted entry says who reverted it, and its link opens the revert's own entry and diff.
    undo = audit.entry_detail(actor, audit_id=change.id).reverted_by
    assert undo is not None
    infos = [shown(i.value) for i in at.info]
    assert any(f"Reverted by {actor.email}" in i and f"entry #{undo.id}" in i for i in infos), infos
    assert not any(b.key == f"revert_{change.id}" for b in at.button)
    at.button(key="open_reverted_by").click().run()
    assert at.subheader[0].value == f"Entry #{undo.id}"
    assert any(f"reverted entry #{change.id}" in shown(i.value) for i in at.info)
    assert at.dataframe[1].value.to_dict("records")[0] == {"field": "role", "before": "analyst", "after": "viewer"}


def test_filters_with_no_match_show_what_to_do(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    at.switch_page(PAGE).run()
    at.text_input(key="f_search").input("no entry says this <script>").run()
    assert not at.exception
    assert any("No entry matches these filters" in shown(i.value) for i in at.info)
    assert not at.dataframe


@pytest.mark.parametrize("role", ["developer", "analyst", "viewer", "reviewer"])
def test_non_admins_cannot_open_the_audit_log(app_as, role: str) -> None:  # type: ignore[no-untyped-def]
    at = app_as(role)
    page = AppTest.from_file(str(Path(__file__).resolve().parents[2] / PAGE))
    page.session_state[ACTOR_KEY] = at.session_state[ACTOR_KEY]
    page.run()
    assert any("audit.view" in shown(e.value) for e in page.error), [shown(e.value) for e in page.error]
    assert not page.dataframe


def test_the_useful_columns_are_in_view_on_a_1280_px_window(app_as) -> None:  # type: ignore[no-untyped-def]
    # 820 px of table beside the open sidebar (measured in Chromium). Entry, when, who, what and whether it
    # can be undone come first with fixed widths, and the summary starts in view (it is whole in the detail).
    at = app_as("admin")
    at.switch_page(PAGE).run()
    table = at.dataframe[0]
    useful = ["entry", "when", "user", "action", "revert"]
    assert list(table.value.columns)[:6] == [*useful, "summary"]
    config = json.loads(table.proto.columns)
    assert sum(config[c]["width"] for c in useful) + 150 <= 820, {c: config[c].get("width") for c in useful}
    assert set(table.value["revert"]) <= {"revertible", ""} | {v for v in table.value["revert"] if
                                                               v.startswith("reverted (#")}


def test_the_detail_reads_stored_values_as_people_do(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    actor = at.session_state[ACTOR_KEY]
    login = audit.list_entries(actor, action="login.succeeded", limit=1)[0]
    at.switch_page(PAGE).run()
    at.selectbox(key="audit_entry").select(login.id).run()
    diff = at.dataframe[1].value.set_index("field")
    # Stored as ISO UTC with microseconds; shown to the second in the demo organization's zone (New York).
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T", diff.loc["last_login_at", "after"])
    assert diff.loc["session_expires_at", "before"] == "—"
    lines = [shown(m.value) for m in at.markdown]
    assert any(f"on user #{login.entity_id} · " in line and re.search(r"E[SD]T$", line) for line in lines), lines
