"""The prompt editor in Chromium: type into the Ace editor (an iframe), save, see the new version and its diff."""

from __future__ import annotations

import re
import time

import pytest

from aiconsole.demo.seed import DEMO_LOGINS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _login(page, url: str, role: str) -> None:  # type: ignore[no-untyped-def]
    email, password, _ = next(x for x in DEMO_LOGINS if x[2] == role)
    page.goto(url)
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name=re.compile("Live Status")).wait_for(timeout=30_000)


def _wait_for_html(page, locator, text: str, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    # A selectbox shows its value in an attribute, which text locators do not search.
    deadline = time.monotonic() + timeout_s
    while text not in locator.inner_html():
        assert time.monotonic() < deadline, f"{text!r} not shown"
        page.wait_for_timeout(250)


def test_type_in_the_ace_editor_save_and_see_the_diff(page, console_url: str, artifacts) -> None:  # type: ignore[no-untyped-def]
    _login(page, console_url, "developer")
    page.get_by_role("link", name="Prompts").click()
    page.get_by_role("heading", name=re.compile("Prompts")).wait_for(timeout=30_000)
    base = page.locator('[data-testid="stSelectbox"]').filter(has_text="Base version")
    base.wait_for(timeout=30_000)
    _wait_for_html(page, base, " — ")
    found = re.search(r"v(\d+) — ", base.inner_html())
    assert found
    number = int(found.group(1))

    ace = page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]').first
    ace.locator(".ace_content").click(timeout=30_000)
    page.keyboard.press("Control+End")
    page.keyboard.type("\nPrefer everyday words over jargon.")
    # The editor sends its text after 200 ms of quiet; the detected variables are redrawn from it.
    page.wait_for_timeout(1500)
    page.get_by_role("textbox", name="What changed").fill("Everyday words")
    page.get_by_role("button", name="Save new version").click()
    page.get_by_text(f"Saved photo-tagger v{number + 1}.").wait_for(timeout=30_000)
    _wait_for_html(page, base, f"v{number + 1} — Everyday words")  # the new version is the base now

    page.get_by_role("tab", name="Compare versions").click()
    page.get_by_text(f"1 line(s) differ between v{number} and v{number + 1}.").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "prompt_editor.png"), full_page=True)
