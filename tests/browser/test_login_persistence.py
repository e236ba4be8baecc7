"""A login survives reloads and new tabs in Chromium, until it is logged out or revoked (issue 10 item 1).

The session token lives in an HttpOnly, SameSite=Strict cookie set by the console's own route; a deep link
opened while logged out shows the login form under its own address and opens after the login.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest

from aiconsole.demo.seed import DEMO_LOGINS
from aiconsole.platform import auth
from aiconsole.platform.errors import AuthError
from aiconsole.ui.browser_session import COOKIE, ROUTE

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ADMIN, PASSWORD, _ = next(x for x in DEMO_LOGINS if x[2] == "admin")


def _session_cookie(context, timeout_s: float = 20) -> dict:  # type: ignore[no-untyped-def]
    """The login cookie once the page has had the route set it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [c for c in context.cookies() if c["name"] == COOKIE]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, "the login cookie was never set"
        time.sleep(0.25)


def _heading(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("heading", name=re.compile(title)).wait_for(timeout=30_000)


def _login_form(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)


def test_a_reload_keeps_you_on_the_page_and_the_cookie_is_httponly(page, console_url: str, log_in) -> None:  # type: ignore[no-untyped-def]
    log_in(page, console_url, ADMIN, PASSWORD)
    page.get_by_role("link", name="Prompts").click()
    _heading(page, "Prompts")
    cookie = _session_cookie(page.context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # served over plain http here (see aiconsole/ui/server.py)
    assert cookie["expires"] > time.time() + 3600  # until the session ends, not the browser
    assert COOKIE not in page.evaluate("document.cookie")  # out of JavaScript's reach
    page.reload()
    _heading(page, "Prompts")
    assert page.url.endswith("/prompts")
    assert page.get_by_role("button", name="Log in").count() == 0


def test_a_new_tab_opens_a_deep_link_without_the_form(page, console_url: str, log_in) -> None:  # type: ignore[no-untyped-def]
    log_in(page, console_url, ADMIN, PASSWORD)
    _session_cookie(page.context)
    tab = page.context.new_page()
    tab.goto(f"{console_url}/pipeline")
    _heading(tab, "Pipeline")
    assert tab.get_by_role("button", name="Log in").count() == 0


def test_logout_clears_the_cookie_and_revokes_the_session(page, console_url: str, log_in, console) -> None:  # type: ignore[no-untyped-def]
    log_in(page, console_url, ADMIN, PASSWORD)
    token = _session_cookie(page.context)["value"]
    page.get_by_role("button", name="Log out").click()
    _login_form(page)
    deadline = time.monotonic() + 20
    while any(c["name"] == COOKIE for c in page.context.cookies()):
        assert time.monotonic() < deadline, "logout left the cookie"
        time.sleep(0.25)
    with pytest.raises(AuthError, match="logged out"):
        auth.resume(token, settings=console.settings())
    page.reload()
    _login_form(page)
    assert page.get_by_text("logged out at").count() == 0  # a plain login form, no stale-session notice


def test_a_revoked_session_shows_the_login(page, console_url: str, log_in, console) -> None:  # type: ignore[no-untyped-def]
    log_in(page, console_url, ADMIN, PASSWORD)
    page.get_by_role("link", name="Users").click()
    _heading(page, "Users")
    assert auth.logout(_session_cookie(page.context)["value"], settings=console.settings())
    page.reload()
    _login_form(page)
    page.get_by_text("This session was logged out at").wait_for(timeout=30_000)
    assert page.get_by_role("heading", name=re.compile("Users")).count() == 0


def test_a_deep_link_opens_its_page_after_the_login(page, console_url: str, log_in) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{console_url}/audit_log")
    _login_form(page)
    assert page.url.endswith("/audit_log")  # the form does not replace the address
    log_in(page, f"{console_url}/audit_log", ADMIN, PASSWORD, landing="Audit log")
    assert page.url.endswith("/audit_log")


def test_an_unknown_path_shows_the_login_not_page_not_found(page, console_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{console_url}/no_such_page")
    _login_form(page)
    page.wait_for_timeout(1000)
    assert page.get_by_text("Page not found").count() == 0


@pytest.mark.parametrize(("origin", "code", "status"), [
    ("http://evil.example", "whatever", 403),  # another site's page
    (None, "whatever", 403),                    # no Origin at all
    ("SAME", "not-a-code", 400),                 # this console, but no such code
])
def test_the_cookie_route_refuses_what_its_pages_did_not_send(console_url: str, origin: str | None, code: str,
                                                              status: int) -> None:
    request = urllib.request.Request(f"{console_url}{ROUTE}", data=code.encode(), method="POST")
    if origin is not None:
        request.add_header("Origin", console_url if origin == "SAME" else origin)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == status
    assert "set-cookie" not in {k.lower() for k in refused.value.headers}
