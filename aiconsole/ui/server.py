"""What `streamlit run app.py` serves beside Streamlit's own routes (app.py: `st.App(..., routes=routes(),
lifespan=lifespan)`): the HTTP route that sets and clears the login cookie (see browser_session), and a clean
stop on SIGINT/SIGTERM.

POST {base}/api/session with a single-use code as the body: the route looks the code up and answers 204 with
Set-Cookie (HttpOnly, SameSite=Strict, Path=the console, Max-Age=until the session expires; Secure when the
request came over https, directly or through a proxy's X-Forwarded-Proto). A clearing code also revokes the
session the browser's cookie names. Anything else is refused: a request from another origin (403), an
unknown, used or expired code (400).

On plain http (`make run` on http://localhost:8501) the cookie is not Secure: a browser keeps a Secure cookie
only from an https page (Chromium and Firefox make an exception for localhost, Safari does not), so a Secure
cookie there would end every login at the next reload. Serve the console over https and it is Secure.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aiconsole.platform import auth
from aiconsole.ui import browser_session

MAX_CODE = 100  # bytes; a code is 32 characters


def _https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _same_origin(request: Request) -> bool:
    # The code alone is a secret only this session's page holds; the origin check keeps another site from
    # posting a code of its own (logging the browser in as someone else).
    origin = request.headers.get("origin")
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    return bool(origin and host) and urlsplit(origin or "").netloc.lower() == (host or "").split(",")[0].lower()


async def session_cookie(request: Request) -> Response:
    """Swap a single-use code for Set-Cookie (or for clearing the cookie and revoking its session)."""
    if not _same_origin(request):
        return PlainTextResponse("Refused: the request did not come from this console's pages.", status_code=403)
    body = await request.body()
    handoff = browser_session.redeem(body[:MAX_CODE].decode("ascii", "replace").strip())
    if handoff is None:
        return PlainTextResponse("Refused: unknown, used or expired code.", status_code=400)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    secure, path = _https(request), browser_session.cookie_path()
    if handoff.token is not None and handoff.expires_at is not None:
        expires = handoff.expires_at if handoff.expires_at.tzinfo else handoff.expires_at.replace(tzinfo=UTC)
        max_age = max(0, int((expires - datetime.now(UTC)).total_seconds()))
        response.set_cookie(browser_session.COOKIE, handoff.token, max_age=max_age, path=path, secure=secure,
                            httponly=True, samesite="strict")
        return response
    old = request.cookies.get(browser_session.COOKIE)
    if old:
        await run_in_threadpool(auth.logout, old)
    response.delete_cookie(browser_session.COOKIE, path=path, secure=secure, httponly=True, samesite="strict")
    return response


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """Stop as Streamlit's own server does: exit 0 after the graceful shutdown a SIGINT or SIGTERM starts.

    st.App runs on uvicorn, which re-raises the signal once it has shut down, so the process would end with
    status 143 (SIGTERM) or a click "Aborted!" and status 1 (Ctrl+C) instead of a plain exit.
    """
    # Inside the server's run, its signal handler is installed: uvicorn's Server.handle_exit, bound to it.
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    yield
    captured = getattr(server, "_captured_signals", None)
    if isinstance(captured, list):
        captured.clear()


def routes() -> list[Route]:
    """The routes app.py hands to st.App (read after Streamlit has loaded its config: the base URL path)."""
    return [Route(browser_session.route_path(), session_cookie, methods=["POST"])]
