"""Every page for every role, through the real app.py navigation (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aiconsole.platform import auth
from aiconsole.platform.db.models import ROLES
from aiconsole.platform.permissions import allowed
from aiconsole.ui.session import ACTOR_KEY, TOKEN_KEY
from aiconsole.ui.shell import PAGES
from aiconsole.ui.widgets import shown

ROOT = Path(__file__).resolve().parents[2]


def _texts(at: AppTest) -> str:
    parts = [shown(m.value) for m in at.markdown] + [t.value for t in at.title] + [h.value for h in at.subheader]
    parts += [shown(e.value) for kind in (at.error, at.info, at.warning) for e in kind]
    return "\n".join(str(p) for p in parts)


def test_login_page_when_logged_out(demo_env: dict[str, str]) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.text_input(key="login_email") is not None
    assert not at.metric  # no data before login


def test_wrong_password_then_login(demo_env: dict[str, str], passwords: dict[str, str]) -> None:
    email = demo_env["analyst"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="login_email").input(email)
    at.text_input(key="login_password").input("not-the-password")
    at.button[0].click().run()
    assert any("Wrong email or password" in shown(e.value) for e in at.error)
    assert TOKEN_KEY not in at.session_state
    at.text_input(key="login_password").input(passwords[email])
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[TOKEN_KEY]
    assert any(m.label == "Pending" for m in at.metric)


def test_unknown_email_gets_the_same_message(demo_env: dict[str, str]) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="login_email").input("nobody@nowhere.example")
    at.text_input(key="login_password").input("whatever-password")
    at.button[0].click().run()
    assert any("Wrong email or password" in shown(e.value) for e in at.error)


def test_expired_or_forged_token_returns_to_login(demo_env: dict[str, str]) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[TOKEN_KEY] = "forged-token"
    at.run()
    assert not at.exception
    assert not at.metric
    assert at.text_input(key="login_email") is not None


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "title", "permission"),
                         [(p.script, p.title, p.permission) for p in PAGES])
def test_every_page_for_every_role(app_as, role: str, path: str, title: str, permission: str) -> None:  # type: ignore[no-untyped-def]
    at = app_as(role)
    if allowed(role, permission):
        at.switch_page(path).run()
        assert not at.exception, at.exception
        assert title in _texts(at)
    else:
        # The page is not in this role's navigation; and run directly, its server-side guard refuses.
        actor = at.session_state[ACTOR_KEY]
        direct = AppTest.from_file(str(ROOT / path), default_timeout=60)
        direct.session_state[ACTOR_KEY] = actor
        direct.run()
        assert not direct.exception
        assert any("cannot" in shown(e.value) for e in direct.error), _texts(direct)
        assert not direct.dataframe and not direct.metric


def test_logout_revokes_the_session(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    token = at.session_state[TOKEN_KEY]
    at.button(key="logout").click().run()
    assert TOKEN_KEY not in at.session_state
    with pytest.raises(auth.AuthError):
        auth.resume(token)


def test_platform_admin_switches_organization_and_others_cannot(app_as) -> None:  # type: ignore[no-untyped-def]
    from aiconsole.admin import users

    other = users.create_organization(name=f"Other Demo Org {id(app_as)}", is_demo=True)
    at = app_as("platform_admin")
    home = at.session_state[ACTOR_KEY].organization_id
    assert any("Demo data" in m.value for m in at.sidebar.markdown)  # st.badge renders as markdown
    at.selectbox(key="org_picker").select(other.id).run()
    assert not at.exception
    assert at.session_state[ACTOR_KEY].organization_id == other.id
    pending = next(m for m in at.metric if m.label == "Pending")
    assert pending.value == "0"  # the new organization has an empty queue
    at.selectbox(key="org_picker").select(home).run()
    assert at.session_state[ACTOR_KEY].organization_id == home

    admin = app_as("admin")
    assert not admin.sidebar.get("selectbox")  # no picker for an org admin
    admin.session_state["_aiconsole_org"] = other.id  # even a forged choice is refused server-side
    admin.run()
    assert admin.session_state[ACTOR_KEY].organization_id == home


def test_demo_platform_admin_cannot_reach_a_real_organization(app_as) -> None:  # type: ignore[no-untyped-def]
    from aiconsole.admin import users

    real = users.create_organization(name=f"Real Customer {id(app_as)}", is_demo=False)
    at = app_as("platform_admin")
    actor = at.session_state[ACTOR_KEY]
    assert real.id not in {o.id for o in users.list_organizations(actor)}
    at.session_state["_aiconsole_org"] = real.id  # forged choice
    at.run()
    assert at.session_state[ACTOR_KEY].organization_id != real.id
