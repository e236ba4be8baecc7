"""The login cookie: an HttpOnly, SameSite=Strict cookie holding the opaque session token, so a login survives
reloads and new tabs until the session expires or is revoked (`auth.resume` re-checks it on every run).

Streamlit talks to the page over a websocket, which cannot set a cookie, and a cookie set by JavaScript
cannot be HttpOnly. So an HTTP response of the console's own route sets it (aiconsole/ui/server.py,
which app.py adds to Streamlit's server through `st.App`): after a login the page runs one `fetch` that hands
the route a single-use code, valid for a minute and held in this process's memory; the route swaps it for
the token and answers with Set-Cookie. The token never reaches JavaScript; the database keeps its sha256.
Logging out does the same with a code that clears the cookie (and revokes the session it names).

The browser sends the cookie with the websocket's handshake, where `st.context.cookies` reads it: a reload, a
new tab or a deep link is logged in without the form.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import streamlit as st

COOKIE = "aiconsole_session"
ROUTE = "/api/session"  # under server.baseUrlPath, beside Streamlit's own routes
HANDOFF_SECONDS = 60.0
MAX_HANDOFFS = 10_000  # codes are made only by logins and logouts; the bound keeps memory flat regardless
PENDING_KEY = "_aiconsole_cookie_code"


@dataclass(frozen=True)
class Handoff:
    """What a code stands for: set the cookie to `token` until `expires_at`, or (token None) clear it."""

    token: str | None
    expires_at: datetime | None
    deadline: float  # time.monotonic() after which the code is void


_handoffs: dict[str, Handoff] = {}
_lock = threading.Lock()


def issue(token: str | None, expires_at: datetime | None) -> str:
    """A fresh single-use code for the route: set the cookie to `token`, or clear it when `token` is None."""
    code = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _lock:
        for old in [c for c, h in _handoffs.items() if h.deadline < now]:
            del _handoffs[old]
        while len(_handoffs) >= MAX_HANDOFFS:
            del _handoffs[next(iter(_handoffs))]
        _handoffs[code] = Handoff(token=token, expires_at=expires_at, deadline=now + HANDOFF_SECONDS)
    return code


def redeem(code: str) -> Handoff | None:
    """The handoff of `code`, once: None when it is unknown, used or older than a minute."""
    with _lock:
        handoff = _handoffs.pop(code, None)
    return handoff if handoff is not None and handoff.deadline >= time.monotonic() else None


def waiting(code: str) -> bool:
    """Whether `code` is still to be redeemed."""
    with _lock:
        handoff = _handoffs.get(code)
    return handoff is not None and handoff.deadline >= time.monotonic()


def route_path() -> str:
    """The route's path, under the server's base URL path when one is set."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{ROUTE}" if base else ROUTE


def cookie_path() -> str:
    """The cookie's Path: the whole console."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/" if base else "/"


def cookie_token() -> str | None:
    """The session token the browser sent with this session's websocket handshake, if any."""
    value = st.context.cookies.get(COOKIE)
    return value if isinstance(value, str) and value else None  # (AppTest's stand-in context holds mocks)


def remember(token: str, expires_at: datetime) -> None:
    """After a login: have the page ask the route to set the cookie (on the next run, see `sync`)."""
    st.session_state[PENDING_KEY] = issue(token, expires_at)


def forget() -> None:
    """After a logout or a refused cookie: have the page ask the route to clear the cookie."""
    st.session_state[PENDING_KEY] = issue(None, None)


def sync() -> None:
    """Run the page's side of a pending cookie change: a fetch of the route with the code, until it is used.

    Called at the end of the sidebar and of the login form, where the zero-height element shows nothing.
    """
    code = st.session_state.get(PENDING_KEY)
    if not code:
        return
    if not waiting(code):
        st.session_state.pop(PENDING_KEY, None)
        return
    # The code is urlsafe base64 and the path comes from the server's config; json.dumps quotes both for JS.
    st.html(f"<script>fetch({json.dumps(route_path())}, {{method: 'POST', credentials: 'same-origin', "
            f"cache: 'no-store', headers: {{'Content-Type': 'text/plain'}}, body: {json.dumps(code)}}});"
            "</script>", unsafe_allow_javascript=True, width="content")
