"""Local accounts: login with lockout, server-side sessions, logout, and the OIDC (st.login) mapping.

Login happens before we know the organization, so everything here runs in a service session. The browser
only ever holds a random token; the database stores its sha256, so a leaked table cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, object_session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor, demo_reach
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import LoginSession, User
from aiconsole.platform.db.sql import rowcount
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AuthError
from aiconsole.platform.passwords import hash_password, needs_rehash, verify_password
from aiconsole.platform.settings import Settings, get_settings

WRONG_CREDENTIALS = "Wrong email or password."
_WRONG_HINT = "Check both and try again (email is not case-sensitive)."
MAX_EMAIL = 320
MAX_PASSWORD = 1024
# Verified against when the email is unknown, so both failure paths cost one argon2 verification and
# response time does not reveal which addresses have accounts.
_DUMMY_HASH: str | None = None


@dataclass(frozen=True)
class LoginResult:
    """A successful login: the token for the browser, who it is, and when the session ends."""

    token: str
    actor: Actor
    expires_at: datetime


def normalize_email(email: str) -> str:
    """The canonical form we store and compare: trimmed and lower-cased."""
    return (email or "").strip().lower()


def token_hash(token: str) -> str:
    """The sha256 hex digest stored for a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def actor_of(user: User) -> Actor:
    """The Actor a user acts as in their own organization (a demo account carries the demo's reach)."""
    session = object_session(user)
    if session is None:
        raise RuntimeError("actor_of needs a user loaded in a session (to read its organization's demo flag).")
    return Actor(user_id=user.id, email=user.email, role=user.role, organization_id=user.organization_id,
                 demo_organizations=demo_reach(session, user.organization_id))


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def _find_user(s: Session, email: str, *, lock: bool = False) -> User | None:
    query = select(User).where(func.lower(User.email) == email)
    if lock:
        # Serializes concurrent failed attempts on PostgreSQL so none of them is lost from the count.
        query = query.with_for_update()
    return s.scalars(query).first()


def login(*, email: str, password: str, settings: Settings | None = None) -> LoginResult:
    """Check a local account's password and open a session; raises AuthError saying why not."""
    settings = settings or get_settings()
    email = normalize_email(email)
    now = utcnow()
    if not email or not password:
        raise AuthError("Enter both your email and your password.")
    if len(email) > MAX_EMAIL or len(password) > MAX_PASSWORD:
        raise AuthError(WRONG_CREDENTIALS, hint=_WRONG_HINT)
    failure: AuthError | None = None
    result: LoginResult | None = None
    # The failure count and audit entries must be committed even though we then refuse, so the
    # session block decides and the error is raised only after it has committed.
    with service_session(settings=settings) as s:
        user = _find_user(s, email, lock=True)
        if user is None:
            verify_password(_dummy_hash(), password)
            # People sometimes type their password into the email field; keep only things shaped like emails.
            claimed = email if "@" in email else "anonymous"
            audit.record_anonymous(s, claimed=claimed, action="login.failed", entity_type="user",
                                   entity_id=None, after={"email": claimed, "reason": "unknown email"},
                                   summary=f"Failed login for unknown email {claimed}")
            failure = AuthError(WRONG_CREDENTIALS, hint=_WRONG_HINT)
        else:
            failure, result = _attempt(s, user, password, settings=settings, now=now)
    if failure is not None:
        raise failure
    assert result is not None
    return result


def _attempt(s: Session, user: User, password: str, *, settings: Settings,
             now: datetime) -> tuple[AuthError | None, LoginResult | None]:
    actor = actor_of(user)
    if user.locked_until is not None and user.locked_until > now:
        # No password check while locked: a locked account must not keep answering guesses.
        audit.record(s, actor=actor, action="login.refused_locked", entity_type="user", entity_id=user.id,
                     before=None, after={"locked_until": user.locked_until},
                     summary=f"Login refused: account locked until {_fmt(user.locked_until)}")
        locked = AuthError(f"This account is locked until {_fmt(user.locked_until)} after failed logins.",
                           hint="Try again after that time, or ask an admin to unlock it (disable, enable).")
        return locked, None
    if user.password_hash is None or not verify_password(user.password_hash, password):
        reason = "single sign-on account" if user.password_hash is None else "wrong password"
        return _failed(s, user, settings=settings, now=now, reason=reason), None
    if not user.is_active:
        audit.record(s, actor=actor, action="login.refused_disabled", entity_type="user", entity_id=user.id,
                     before=None, after={"is_active": False}, summary="Login refused: account disabled")
        return AuthError("This account is disabled.",
                         hint="Ask an admin of your organization to enable it."), None
    before = {"failed_logins": user.failed_logins, "last_login_at": user.last_login_at}
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(minutes=settings.session_ttl_minutes)
    s.add(LoginSession(user_id=user.id, token_hash=token_hash(token), created_at=now, expires_at=expires_at))
    audit.record(s, actor=actor, action="login.succeeded", entity_type="user", entity_id=user.id,
                 before=before,
                 after={"failed_logins": 0, "last_login_at": now, "session_expires_at": expires_at},
                 summary=f"Logged in; session valid until {_fmt(expires_at)}")
    return None, LoginResult(token=token, actor=actor, expires_at=expires_at)


def _failed(s: Session, user: User, *, settings: Settings, now: datetime, reason: str) -> AuthError:
    actor = actor_of(user)
    # The count restarts at 0 when a lock is set, so a lock that has run out gives a fresh budget.
    previous = user.failed_logins
    count = previous + 1
    if count >= settings.login_max_failures:
        until = now + timedelta(minutes=settings.login_lockout_minutes)
        user.failed_logins = 0
        user.locked_until = until
        audit.record(s, actor=actor, action="login.locked", entity_type="user", entity_id=user.id,
                     before={"failed_logins": previous},
                     after={"failed_logins": count, "locked_until": until},
                     summary=f"Account locked until {_fmt(until)} after {count} failed logins ({reason})")
        return AuthError(f"{WRONG_CREDENTIALS} After {count} failed attempts the account is locked until "
                         f"{_fmt(until)}.", hint="Try again after that time, or ask an admin to unlock it.")
    user.failed_logins = count
    user.locked_until = None
    audit.record(s, actor=actor, action="login.failed", entity_type="user", entity_id=user.id,
                 before={"failed_logins": previous}, after={"failed_logins": count},
                 summary=f"Failed login {count} of {settings.login_max_failures} ({reason})")
    return AuthError(WRONG_CREDENTIALS, hint=_WRONG_HINT)


def resume(token: str, *, settings: Settings | None = None) -> Actor:
    """The actor of a live session token; raises AuthError when it is unknown, revoked, expired or barred."""
    settings = settings or get_settings()
    if not token:
        raise AuthError("You are not logged in.", hint="Log in with your email and password.")
    now = utcnow()
    with service_session(settings=settings) as s:
        row = s.execute(
            select(LoginSession, User).join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == token_hash(token))
        ).first()
        if row is None:
            raise AuthError("This session is not valid.", hint="Log in again.")
        ls, user = row
        if ls.revoked_at is not None:
            raise AuthError(f"This session was logged out at {_fmt(ls.revoked_at)}.", hint="Log in again.")
        if ls.expires_at <= now:
            raise AuthError(f"Your session expired at {_fmt(ls.expires_at)}.", hint="Log in again.")
        if not user.is_active:
            raise AuthError("Your account has been disabled.",
                            hint="Ask an admin of your organization to enable it.")
        if user.locked_until is not None and user.locked_until > now:
            raise AuthError(f"Your account is locked until {_fmt(user.locked_until)} after failed logins.",
                            hint="Log in again after that time, or ask an admin to unlock it.")
        return actor_of(user)


def logout(token: str, *, settings: Settings | None = None) -> bool:
    """Revoke the session of `token`; True when a live session was ended (idempotent)."""
    settings = settings or get_settings()
    if not token:
        return False
    now = utcnow()
    with service_session(settings=settings) as s:
        row = s.execute(
            select(LoginSession, User).join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == token_hash(token), LoginSession.revoked_at.is_(None))
        ).first()
        if row is None:
            return False
        ls, user = row
        ls.revoked_at = now
        audit.record(s, actor=actor_of(user), action="logout", entity_type="user", entity_id=user.id,
                     before=None, after={"session_id": ls.id}, summary="Logged out")
        return True


def revoke_sessions(s: Session, *, user_id: int, now: datetime | None = None) -> int:
    """End every live session of a user in the caller's transaction (when disabled); returns how many."""
    return rowcount(s.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    ))


def actor_for_email(email: str, *, settings: Settings | None = None, record_login: bool = False) -> Actor:
    """The actor for a user who signed in through OIDC (st.login): the users table decides the role.

    Called on every script run, so it writes nothing unless `record_login` (once per sign-in) is set.
    """
    settings = settings or get_settings()
    email = normalize_email(email)
    if not email:
        raise AuthError("Your identity provider did not send an email address.",
                        hint="Allow the 'email' scope for aiconsole in the provider's settings.")
    now = utcnow()
    with service_session(settings=settings) as s:
        user = _find_user(s, email)
        if user is None:
            raise AuthError(f"There is no aiconsole account for {email}.",
                            hint="Ask an admin to add you (Users page, or "
                                 "`aiconsole user add EMAIL --role ROLE`).")
        if not user.is_active:
            raise AuthError(f"The aiconsole account for {email} is disabled.",
                            hint="Ask an admin of your organization to enable it.")
        if user.locked_until is not None and user.locked_until > now:
            raise AuthError(f"The aiconsole account for {email} is locked until {_fmt(user.locked_until)}.",
                            hint="Try again after that time, or ask an admin to unlock it.")
        actor = actor_of(user)
        if record_login:
            before = {"last_login_at": user.last_login_at}
            user.last_login_at = now
            audit.record(s, actor=actor, action="login.succeeded", entity_type="user", entity_id=user.id,
                         before=before, after={"last_login_at": now, "method": "oidc"},
                         summary="Logged in through single sign-on")
        return actor
