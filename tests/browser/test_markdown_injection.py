"""Markdown injection in Chromium (issue 9 item 11): user text that is a tracking pixel loads nothing.

A user whose email and display name carry `![t](http://127.0.0.1:PORT/track.png)` (and an `<img>` tag, an
icon code, a colour directive and `$math$`) fails a login, saves a prompt version with the same text as its
message, has their account changed on the Users page and is read in the audit log, and logs in to see their
own sidebar. A tracking server on 127.0.0.1 counts every request: it must stay at 0, no request of any page
may leave the console's origin, and the text must be shown literally where it appears.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from aiconsole.demo.seed import DEMO_LOGINS
from aiconsole.platform import auth
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import User
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.passwords import hash_password
from aiconsole.prompts import catalog
from aiconsole.prompts import versions as prompts

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "pixel-password-1"  # a test account's password
JOINER = "\u2060"  # the invisible word joiner inert() puts inside shortcodes and bare URLs


@dataclass
class Tracker:
    """A web server that records every path asked of it (a tracking pixel's host)."""

    port: int = 0
    hits: list[str] = field(default_factory=list)


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    found = Tracker()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            found.hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


def _demo(role: str) -> tuple[str, str]:
    email, password, _ = next(x for x in DEMO_LOGINS if x[2] == role)
    return email, password


def _seed_pixel_user(settings, email: str, name: str) -> None:  # type: ignore[no-untyped-def]
    # Straight into the table: an address from single sign-on or an import is not held to the form's format.
    with service_session(settings=settings) as s:
        admin = s.scalars(select(User).where(User.email == _demo("admin")[0])).one()
        s.add(User(organization_id=admin.organization_id, email=email, display_name=name, role="developer",
                   password_hash=hash_password(PASSWORD), is_active=True, failed_logins=0, created_at=utcnow()))


def _choose(page, label: str, option: str, nth: int = 0) -> None:  # type: ignore[no-untyped-def]
    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).nth(nth)
    box.click()
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()


def _shown(locator, text: str) -> str:  # type: ignore[no-untyped-def]
    """The text of the first element under `locator` holding `text`, as a reader sees it."""
    found = locator.filter(has_text=text).first
    found.wait_for(timeout=30_000)
    return str(found.inner_text()).replace(JOINER, "")


def test_user_text_is_shown_literally_and_loads_nothing(browser, console, log_in, tracker: Tracker,  # type: ignore[no-untyped-def]
                                                        artifacts) -> None:
    settings = console.settings()
    pixel = f"![t](http://127.0.0.1:{tracker.port}/track.png)"
    tag = f'<img src="http://127.0.0.1:{tracker.port}/html.png">'
    email = f"pixel{pixel}@demo.aiconsole.dev"
    _seed_pixel_user(settings, email, f"Pixel {pixel} {tag} :material/home: :red[red] $x^2$")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    try:
        # A failed login as that user (recorded in the audit log under their address).
        page.goto(console.url)
        page.get_by_role("textbox", name="Email").fill(email)
        page.get_by_role("textbox", name="Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        _shown(page.locator('[data-testid="stAlertContentError"]'), "Wrong email or password")

        # Their own sidebar shows their address.
        log_in(page, console.url, email, PASSWORD)
        assert pixel in _shown(page.locator('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]'),
                               "track.png")
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Log in").wait_for(timeout=30_000)

        # A prompt conflict: they save a version (their text as its message) while the admin edits.
        admin_email, admin_password = _demo("admin")
        log_in(page, console.url, admin_email, admin_password)
        page.get_by_role("link", name="Prompts").click()
        page.get_by_role("heading", name=re.compile("Prompts")).wait_for(timeout=30_000)
        ace = page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]').first
        ace.locator(".ace_content").click(timeout=30_000)
        author = auth.login(email=email, password=PASSWORD, settings=settings).actor
        prompt = next(p for p in catalog.list_prompts(author, settings=settings) if p.name == "photo-tagger")
        latest = catalog.list_versions(author, prompt_id=prompt.id, settings=settings)[0]
        prompts.save_version(author, prompt_id=prompt.id, base_version=latest.version,
                             content=latest.content + "\nKeep it brief.", message=f"{pixel} {tag}",
                             settings=settings)
        page.keyboard.press("Control+End")
        page.keyboard.type("\nPrefer everyday words.")
        page.wait_for_timeout(1500)  # the editor sends its text after 200 ms of quiet
        page.get_by_role("textbox", name="What changed").fill("Everyday words")
        page.get_by_role("button", name="Save new version").click()
        conflict = _shown(page.locator('[data-testid="stAlertContentError"]'), "Not saved")
        assert pixel in conflict and tag in conflict, conflict
        page.get_by_role("link", name="Pipeline").click()  # away and back: the version list and pickers
        page.get_by_role("heading", name=re.compile("Pipeline")).wait_for(timeout=30_000)
        page.get_by_role("link", name="Prompts").click()  # now hold their message
        page.get_by_role("tab", name="Labels & rollback").click(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artifacts / "markdown_injection_prompts.png"), full_page=True)

        # Users: disabling the account flashes its address.
        page.get_by_role("link", name="Users").click()
        page.get_by_role("heading", name=re.compile("Users")).wait_for(timeout=30_000)
        _choose(page, "User", "pixel")
        page.get_by_role("button", name="Disable account").click()
        assert pixel in _shown(page.locator('[data-testid="stAlertContentSuccess"]'), "is disabled")

        # The audit log, filtered to that user: the entry list and the entry's detail name them.
        page.get_by_role("link", name="Audit log").click()
        page.get_by_role("heading", name=re.compile("Audit log")).wait_for(timeout=30_000)
        _choose(page, "User", "pixel")
        assert pixel in _shown(page.locator('[data-testid="stMarkdownContainer"]'), "track.png")
        page.screenshot(path=str(artifacts / "markdown_injection_audit.png"), full_page=True)
        page.wait_for_timeout(2000)  # time for any image to be fetched
    finally:
        context.close()
    assert tracker.hits == [], f"the tracking server was reached: {tracker.hits}"
    outside = [u for u in requests if not u.startswith((console.url, "data:", "blob:"))]
    assert outside == [], sorted(set(outside))
