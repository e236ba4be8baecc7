"""Login, lockout, sessions and the OIDC mapping, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text, update

from aiconsole.admin import users
from aiconsole.platform import auth
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import AuditLog, LoginSession, User
from aiconsole.platform.errors import AuthError, PermissionDenied
from aiconsole.platform.passwords import needs_rehash
from aiconsole.platform.settings import Settings

PASSWORD = "correct horse battery"


def _setup(settings: Settings, *, role: str = "analyst", email: str = "ana@example.com") -> tuple[int, int]:
    org = users.create_organization(name="Acme Photos", settings=settings)
    system = Actor.system("test", org.id)
    # A second admin keeps the last-admin rule out of these tests' way.
    users.create_user(system, email="boss@example.com", display_name="Boss", role="admin",
                      password="boss-password-1", settings=settings)
    user = users.create_user(system, email=email, display_name="Ana", role=role, password=PASSWORD,
                             settings=settings)
    return org.id, user.id


def _user(settings: Settings, user_id: int) -> User:
    with service_session(engine=get_engine(settings)) as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def _audit(settings: Settings) -> list[AuditLog]:
    with service_session(engine=get_engine(settings)) as s:
        return list(s.scalars(select(AuditLog).order_by(AuditLog.id)))


def test_login_is_case_insensitive_and_stores_only_the_token_hash(any_settings: Settings) -> None:
    org_id, user_id = _setup(any_settings, email="Ana.Lopez@Example.com")
    before = datetime.now(UTC)
    result = auth.login(email="  ANA.LOPEZ@example.COM ", password=PASSWORD, settings=any_settings)
    assert result.actor == Actor(user_id=user_id, email="ana.lopez@example.com", role="analyst",
                                 organization_id=org_id)
    ttl = timedelta(minutes=any_settings.session_ttl_minutes)
    assert before + ttl <= result.expires_at <= datetime.now(UTC) + ttl
    assert len(result.token) >= 40
    with service_session(engine=get_engine(any_settings)) as s:
        rows = list(s.scalars(select(LoginSession)))
    assert [r.token_hash for r in rows] == [hashlib.sha256(result.token.encode()).hexdigest()]
    assert result.token not in rows[0].token_hash
    user = _user(any_settings, user_id)
    assert user.last_login_at is not None and user.last_login_at >= before
    assert auth.resume(result.token, settings=any_settings) == result.actor


def test_wrong_password_and_unknown_email_read_the_same(any_settings: Settings) -> None:
    _, user_id = _setup(any_settings)
    with pytest.raises(AuthError) as wrong:
        auth.login(email="ana@example.com", password="not the password", settings=any_settings)
    with pytest.raises(AuthError) as unknown:
        auth.login(email="nobody@example.com", password="not the password", settings=any_settings)
    assert str(wrong.value) == str(unknown.value)
    assert wrong.value.message == "Wrong email or password."
    assert _user(any_settings, user_id).failed_logins == 1
    actions = [(e.action, e.organization_id is None) for e in _audit(any_settings)
               if e.action.startswith("login")]
    assert actions == [("login.failed", False), ("login.failed", True)]


def test_five_failures_lock_the_account_until_the_time_passes(any_settings: Settings) -> None:
    _, user_id = _setup(any_settings)
    assert any_settings.login_max_failures == 5 and any_settings.login_lockout_minutes == 15
    for n in range(1, 5):
        with pytest.raises(AuthError, match=r"^Wrong email or password"):
            auth.login(email="ana@example.com", password=f"guess-{n}-xx", settings=any_settings)
        assert _user(any_settings, user_id).failed_logins == n
    t0 = datetime.now(UTC)
    with pytest.raises(AuthError, match="locked until") as fifth:
        auth.login(email="ana@example.com", password="guess-5-xx", settings=any_settings)
    locked_until = _user(any_settings, user_id).locked_until
    assert locked_until is not None
    lockout = timedelta(minutes=15)
    assert t0 + lockout - timedelta(seconds=1) <= locked_until <= datetime.now(UTC) + lockout
    assert locked_until.strftime("%H:%M UTC") in str(fifth.value)

    # While locked, even the right password is refused, with the time it ends.
    with pytest.raises(AuthError, match="locked until") as refused:
        auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings)
    assert locked_until.strftime("%Y-%m-%d %H:%M UTC") in str(refused.value)

    # Fast-forward: the lock ran out a second ago.
    with service_session(engine=get_engine(any_settings)) as s:
        s.execute(update(User).where(User.id == user_id)
                  .values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    result = auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings)
    assert result.actor.user_id == user_id
    user = _user(any_settings, user_id)
    assert (user.failed_logins, user.locked_until) == (0, None)
    actions = [e.action for e in _audit(any_settings) if e.action.startswith("login")]
    assert actions == ["login.failed"] * 4 + ["login.locked", "login.refused_locked", "login.succeeded"]


def test_an_expired_lock_gives_a_fresh_budget_of_attempts(settings: Settings) -> None:
    strict = settings.model_copy(update={"login_max_failures": 2, "login_lockout_minutes": 1})
    _, user_id = _setup(strict)
    for _ in range(2):
        with pytest.raises(AuthError):
            auth.login(email="ana@example.com", password="wrong-password", settings=strict)
    assert _user(strict, user_id).locked_until is not None
    with service_session(engine=get_engine(strict)) as s:
        s.execute(update(User).where(User.id == user_id)
                  .values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(AuthError) as first_again:
        auth.login(email="ana@example.com", password="wrong-password", settings=strict)
    assert "locked" not in str(first_again.value)
    assert _user(strict, user_id).failed_logins == 1


def test_disabled_account_is_refused_with_its_own_message(any_settings: Settings) -> None:
    org_id, user_id = _setup(any_settings)
    users.set_active(Actor.system("test", org_id), user_id=user_id, active=False, settings=any_settings)
    with pytest.raises(AuthError, match="disabled"):
        auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings)
    # Without the right password it is just a wrong password: no hint that the account exists.
    with pytest.raises(AuthError, match=r"^Wrong email or password"):
        auth.login(email="ana@example.com", password="not-the-password", settings=any_settings)


def test_sessions_expire(any_settings: Settings) -> None:
    _setup(any_settings)
    token = auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings).token
    auth.resume(token, settings=any_settings)
    with service_session(engine=get_engine(any_settings)) as s:
        s.execute(update(LoginSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="expired"):
        auth.resume(token, settings=any_settings)


def test_logout_revokes_the_session(any_settings: Settings) -> None:
    _setup(any_settings)
    token = auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings).token
    other = auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings).token
    assert auth.logout(token, settings=any_settings) is True
    with pytest.raises(AuthError, match="logged out"):
        auth.resume(token, settings=any_settings)
    assert auth.logout(token, settings=any_settings) is False
    # Only that one session ended.
    assert auth.resume(other, settings=any_settings).email == "ana@example.com"
    with pytest.raises(AuthError, match="not valid"):
        auth.resume("made-up-token", settings=any_settings)
    with pytest.raises(AuthError, match="not logged in"):
        auth.resume("", settings=any_settings)


def test_resume_refuses_users_disabled_or_locked_since_login(any_settings: Settings) -> None:
    _, user_id = _setup(any_settings)
    token = auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings).token
    # Change the row directly: the session itself is still live, the user is not.
    with service_session(engine=get_engine(any_settings)) as s:
        s.execute(update(User).where(User.id == user_id).values(is_active=False))
    with pytest.raises(AuthError, match="disabled"):
        auth.resume(token, settings=any_settings)
    with service_session(engine=get_engine(any_settings)) as s:
        s.execute(update(User).where(User.id == user_id).values(
            is_active=True, locked_until=datetime.now(UTC) + timedelta(minutes=5)))
    with pytest.raises(AuthError, match="locked until"):
        auth.resume(token, settings=any_settings)


def test_no_password_ever_reaches_the_audit_log(any_settings: Settings) -> None:
    _setup(any_settings)
    attempts = ["first-wrong-pw", "second-wrong-pw", PASSWORD]
    for pw in attempts[:2]:
        with pytest.raises(AuthError):
            auth.login(email="ana@example.com", password=pw, settings=any_settings)
    with pytest.raises(AuthError):
        auth.login(email="ghost@example.com", password="ghost-password", settings=any_settings)
    with pytest.raises(AuthError):  # a password typed into the email field is not kept either
        auth.login(email="my-secret-pass", password="whatever-123", settings=any_settings)
    auth.login(email="ana@example.com", password=PASSWORD, settings=any_settings)
    with get_engine(any_settings).connect() as conn:
        dump = "\n".join(str(tuple(r)) for r in conn.execute(text("SELECT * FROM audit_log")))
    assert "login.succeeded" in dump and "ghost@example.com" in dump
    for pw in [*attempts, "ghost-password", "my-secret-pass", "boss-password-1", "whatever-123"]:
        assert pw not in dump
    assert "$argon2" not in dump


def test_old_hashes_are_upgraded_on_login(settings: Settings) -> None:
    _, user_id = _setup(settings)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    assert needs_rehash(weak)
    with service_session(engine=get_engine(settings)) as s:
        s.execute(update(User).where(User.id == user_id).values(password_hash=weak))
    auth.login(email="ana@example.com", password=PASSWORD, settings=settings)
    new_hash = _user(settings, user_id).password_hash
    assert new_hash is not None and new_hash != weak and not needs_rehash(new_hash)
    auth.login(email="ana@example.com", password=PASSWORD, settings=settings)


def test_single_sign_on_accounts_have_no_local_password(settings: Settings) -> None:
    org = users.create_organization(name="SSO Org", settings=settings)
    users.create_user(Actor.system("test", org.id), email="sso@example.com", display_name="", role="viewer",
                      password=None, settings=settings)
    with pytest.raises(AuthError, match=r"^Wrong email or password"):
        auth.login(email="sso@example.com", password="anything-at-all", settings=settings)


def test_actor_for_email_maps_oidc_users_through_the_users_table(any_settings: Settings) -> None:
    org_id, user_id = _setup(any_settings, role="reviewer")
    actor = auth.actor_for_email("ANA@example.com", settings=any_settings)
    assert actor == Actor(user_id=user_id, email="ana@example.com", role="reviewer", organization_id=org_id)
    assert not [e for e in _audit(any_settings) if e.action == "login.succeeded"]
    auth.actor_for_email("ana@example.com", settings=any_settings, record_login=True)
    assert next(e.after for e in _audit(any_settings) if e.action == "login.succeeded")["method"] == "oidc"
    with pytest.raises(AuthError, match=r"no aiconsole account for stranger@example\.com"):
        auth.actor_for_email("stranger@example.com", settings=any_settings)
    with pytest.raises(AuthError, match="did not send an email"):
        auth.actor_for_email("", settings=any_settings)
    users.set_active(Actor.system("test", org_id), user_id=user_id, active=False, settings=any_settings)
    with pytest.raises(AuthError, match="disabled"):
        auth.actor_for_email("ana@example.com", settings=any_settings)


def test_empty_credentials_are_refused_before_any_lookup(settings: Settings) -> None:
    with pytest.raises(AuthError, match="Enter both"):
        auth.login(email="", password="x", settings=settings)
    with pytest.raises(AuthError, match="Enter both"):
        auth.login(email="a@example.com", password="", settings=settings)
    assert _audit(settings) == []


def test_a_demo_organizations_account_acts_on_demo_organizations_only(any_settings: Settings) -> None:
    real_id, _ = _setup(any_settings)
    demo = users.create_organization(name="Demo Photos", is_demo=True, settings=any_settings).id
    other = users.create_organization(name="Other Demo", is_demo=True, settings=any_settings).id
    users.create_user(Actor.system("test", demo), email="pa@demo.example.com", display_name="", role="platform_admin",
                      password=None, settings=any_settings)
    actor = auth.actor_for_email("pa@demo.example.com", settings=any_settings)
    assert actor.demo_organizations == frozenset({demo, other})
    assert actor.in_organization(other).organization_id == other
    with pytest.raises(PermissionDenied, match=rf"organization #{real_id} is not a demo organization"):
        actor.in_organization(real_id)
    assert auth.actor_for_email("ana@example.com", settings=any_settings).demo_organizations is None
