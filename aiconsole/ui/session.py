"""Who is logged in. The browser holds nothing but a random token: in Streamlit's server-side session state,
and in an HttpOnly cookie (browser_session) that brings it back after a reload or in a new tab. Every script
run re-validates it against the database (expiry, revocation, disabled users)."""

from __future__ import annotations

import contextlib

import streamlit as st

from aiconsole.admin import users
from aiconsole.platform import auth
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError, AuthError, PermissionDenied
from aiconsole.quality.review_queue import release_all
from aiconsole.ui import browser_session
from aiconsole.ui.widgets import say

TOKEN_KEY = "_aiconsole_token"  # noqa: S105  (a session-state key name, not a secret)
ACTOR_KEY = "_aiconsole_actor"
ORG_KEY = "_aiconsole_org"
NOTICE_KEY = "_aiconsole_notice"
SSO_KEY = "_aiconsole_sso_email"
ENDED_KEY = "_aiconsole_ended_cookie"  # the cookie token this session logged out of or found invalid


def oidc_configured() -> bool:
    """Whether an [auth] section exists in secrets.toml (then `st.login` is offered)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, AttributeError):
        return False
    except Exception:  # a malformed secrets.toml must not lock everybody out of local login
        return False


def resolve_actor() -> Actor | None:
    """The actor for this run, or None when nobody is logged in (or the session ended)."""
    st.session_state.pop(ACTOR_KEY, None)
    token = st.session_state.get(TOKEN_KEY) or _cookie_token()
    actor: Actor | None = None
    if token:
        try:
            actor = auth.resume(token)
            st.session_state[TOKEN_KEY] = token
        except AuthError as exc:
            st.session_state.pop(TOKEN_KEY, None)
            st.session_state[NOTICE_KEY] = str(exc)
            _end_cookie()
            return None
    elif oidc_configured() and getattr(st.user, "is_logged_in", False):
        email = str(st.user.get("email", ""))
        first = st.session_state.get(SSO_KEY) != email  # audit the sign-in once, not every rerun
        try:
            actor = auth.actor_for_email(email, record_login=first)
            st.session_state[SSO_KEY] = email
        except AuthError as exc:
            st.session_state[NOTICE_KEY] = str(exc)
            return None
    if actor is None:
        return None
    org = st.session_state.get(ORG_KEY)
    if org is not None and org != actor.organization_id:
        # Only an organization this actor may list can be switched to (role and demo boundary).
        try:
            reachable = {o.id for o in users.list_organizations(actor)}
            if int(org) not in reachable:
                raise PermissionDenied(f"Organization #{org} is not available to you.")
            actor = actor.in_organization(int(org))
        except AiconsoleError:
            st.session_state.pop(ORG_KEY, None)
    st.session_state[ACTOR_KEY] = actor
    return actor


def _cookie_token() -> str | None:
    """The browser's cookie token, unless this session already logged out of it or found it invalid."""
    token = browser_session.cookie_token()
    return None if token is None or token == st.session_state.get(ENDED_KEY) else token


def _end_cookie() -> None:
    """This session stops reading the cookie it was opened with, and has the browser clear its cookie."""
    token = browser_session.cookie_token()
    if token is not None:
        st.session_state[ENDED_KEY] = token
    browser_session.forget()


def current_actor() -> Actor | None:
    """The actor resolved for this run by app.py (None if not logged in)."""
    return st.session_state.get(ACTOR_KEY)


def signed_in() -> Actor:
    """Every page's first call: this run's actor, re-validated; without one the page says so and stops."""
    actor = (resolve_actor() if st.session_state.get(TOKEN_KEY) or _cookie_token() or oidc_configured()
             else current_actor())
    if actor is None:
        st.error("You are not logged in, or your session ended. Reload the page to log in.")
        st.stop()
    return actor


def require_permission(actor: Actor, permission: str) -> None:
    """Without `permission` the page shows a clear message and stops, before any data is read."""
    try:
        actor.require(permission)
    except AiconsoleError as exc:
        say("error", "{}", exc, icon=":material/block:")
        st.stop()


def log_in(email: str, password: str) -> str | None:
    """Try to log in; returns an error message for the form, or None on success."""
    try:
        result = auth.login(email=email, password=password)
    except AiconsoleError as exc:
        return str(exc)
    st.session_state[TOKEN_KEY] = result.token
    st.session_state.pop(ORG_KEY, None)
    browser_session.remember(result.token, result.expires_at)
    return None


def log_out() -> None:
    """Give back the photos the user holds for review, revoke the server-side session, forget the token and
    have the browser clear its cookie."""
    actor = current_actor()
    if actor is not None:
        with contextlib.suppress(AiconsoleError):  # logging out works even when they cannot be: claims expire
            release_all(actor)
    token = st.session_state.pop(TOKEN_KEY, None)
    if token:
        auth.logout(token)
    for key in (ACTOR_KEY, ORG_KEY, SSO_KEY):
        st.session_state.pop(key, None)
    _end_cookie()
