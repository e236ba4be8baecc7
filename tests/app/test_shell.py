"""The shell's page table and the preamble every page runs (session, sidebar, permission, title, flashes,
error boundary), through AppTest on real pages and on a page whose body fails."""

from __future__ import annotations

import ast
from pathlib import Path

from streamlit.testing.v1 import AppTest

from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.shell import PAGES
from aiconsole.ui.widgets import FLASH_KEY, inert, shown

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "Budget **must** be <b>positive</b> [see](javascript:x)"


def _failing_page(kind: str) -> None:
    # Runs as its own script under AppTest: imports stay inside.
    import streamlit as st

    from aiconsole.platform.errors import ValidationFailed
    from aiconsole.ui.page import Page

    def body(actor: object) -> None:
        st.markdown("body started")
        if st.session_state["fail_with"] == "aiconsole":
            raise ValidationFailed("Budget **must** be <b>positive</b> [see](javascript:x)")
        raise RuntimeError("a bug")

    Page("boom", "Boom", ":material/bug_report:", "live_status.view", "Test", "boom", body).run()


def _run_failing(actor: object, kind: str) -> AppTest:
    at = AppTest.from_function(_failing_page, args=(kind,), default_timeout=60)
    at.session_state[ACTOR_KEY] = actor
    at.session_state["fail_with"] = kind
    at.session_state[FLASH_KEY] = [("success", "queued before the failure")]
    return at.run()


def test_every_page_file_hands_over_to_its_table_entry() -> None:
    files = {p.stem for p in (ROOT / "pages").glob("*.py")}
    assert files == {p.key for p in PAGES}
    for page in PAGES:
        call = ast.parse((ROOT / page.script).read_text()).body[-1]
        assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
        assert [a.value for a in call.value.args if isinstance(a, ast.Constant)] == [page.key], page.script
    assert len({p.url_path for p in PAGES}) == len(PAGES)


def test_an_aiconsole_error_shows_as_its_inert_message(app_as) -> None:  # type: ignore[no-untyped-def]
    actor = app_as("viewer").session_state[ACTOR_KEY]
    at = _run_failing(actor, "aiconsole")
    assert not at.exception
    assert [t.value for t in at.title] == [":material/bug_report: Boom"]
    assert [shown(s.value) for s in at.success] == ["queued before the failure"]  # flashes come before the body
    assert [e.value for e in at.error] == [inert(MESSAGE)] and shown(inert(MESSAGE)) == MESSAGE
    assert any(b.key == "logout" for b in at.sidebar.button)  # the preamble drew the sidebar


def test_other_exceptions_keep_streamlits_handling(app_as) -> None:  # type: ignore[no-untyped-def]
    actor = app_as("viewer").session_state[ACTOR_KEY]
    at = _run_failing(actor, "bug")
    assert at.exception  # Streamlit's own notice (the message itself redacted, as configured), not st.error
    assert not at.error
    assert "body started" in [shown(m.value) for m in at.markdown]


def test_the_permission_check_runs_before_the_body(app_as) -> None:  # type: ignore[no-untyped-def]
    actor = app_as("viewer").session_state[ACTOR_KEY]
    direct = AppTest.from_file(str(ROOT / "pages" / "users.py"), default_timeout=60)
    direct.session_state[ACTOR_KEY] = actor
    direct.run()
    assert not direct.exception
    assert not direct.title  # refused before the title
    assert any("cannot" in shown(e.value) for e in direct.error)
    assert any(b.key == "logout" for b in direct.sidebar.button)  # but with the sidebar, to log out
