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
    page.get_by_text(f"v{number} and v{number + 1} differ in 1 line.").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "prompt_editor.png"), full_page=True)


def _prompts_page(page, console_url: str, role: str):  # type: ignore[no-untyped-def]
    _login(page, console_url, role)
    page.get_by_role("link", name="Prompts").click()
    page.get_by_role("heading", name=re.compile("Prompts")).wait_for(timeout=30_000)
    base = page.locator('[data-testid="stSelectbox"]').filter(has_text="Base version")
    base.wait_for(timeout=30_000)
    _wait_for_html(page, base, " — ")
    return base


def _actor(console, role: str):  # type: ignore[no-untyped-def]
    from aiconsole.platform import auth

    email, password, _ = next(x for x in DEMO_LOGINS if x[2] == role)
    return auth.login(email=email, password=password, settings=console.settings()).actor


def test_merge_view_after_someone_saved_meanwhile(browser, console, artifacts) -> None:  # type: ignore[no-untyped-def]
    from aiconsole.prompts import versions as prompts

    context = browser.new_context(viewport={"width": 1280, "height": 900})  # a normal laptop window
    page = context.new_page()
    settings = console.settings()
    admin = _actor(console, "admin")
    row = next(r for r in prompts.list_prompts(admin, settings=settings) if r.name == "photo-tagger")
    base = _prompts_page(page, console.url, "developer")
    found = re.search(r"v(\d+) — ", base.inner_html())
    assert found
    number = int(found.group(1))
    start = next(v for v in prompts.list_versions(admin, prompt_id=row.id, settings=settings) if v.version == number)
    page.screenshot(path=str(artifacts / "prompt_versions_1280.png"), full_page=False)

    ace = page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]').first
    ace.locator(".ace_content").click(timeout=30_000)
    page.keyboard.press("Control+End")
    mine = " Skip <b>watermarks</b> & text."  # user text: shown as itself, never as markup
    page.keyboard.type(mine)
    page.wait_for_timeout(1500)
    # Someone else saves a rewrite of the start while the editor is open.
    prompts.save_version(admin, prompt_id=row.id, base_version=number, content="Please: " + start.content,
                         message="Their rewrite", settings=settings)
    page.get_by_role("textbox", name="What changed").fill("Skip watermarks")
    page.get_by_role("button", name="Save new version").click()
    page.get_by_text(re.compile(f"Not saved: admin@.* saved version {number + 1} of photo-tagger")).wait_for(
        timeout=30_000)
    page.get_by_text(f"No conflicts: the merge keeps v{number + 1}'s 1 change and your 1 change").wait_for(
        timeout=30_000)
    inserted = page.locator("ins").filter(has_text="Skip <b>watermarks</b> & text.")
    assert inserted.count() >= 2  # my draft's column and the merged text
    assert page.locator("ins b").count() == 0  # the <b> stayed text
    assert page.locator("ins").filter(has_text="Please:").count() >= 1
    page.get_by_role("button", name=re.compile("Take the merged text")).scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "prompt_merge_view.png"))

    page.get_by_role("button", name=f"Take the merged text into the editor on v{number + 1}").click()
    page.get_by_text(f"The merged text is in the editor on v{number + 1}").wait_for(timeout=30_000)
    _wait_for_html(page, base, f"v{number + 1} — Their rewrite")
    page.get_by_role("button", name="Save new version").click()
    page.get_by_text(f"Saved photo-tagger v{number + 2}.").wait_for(timeout=30_000)
    saved = prompts.list_versions(admin, prompt_id=row.id, settings=settings)[0]
    # Both changes are in it (Ace may close the typed tag itself: "</b>" after the cursor).
    assert saved.version == number + 2 and saved.content.startswith("Please: " + start.content + mine)
    context.close()


def test_production_label_follows_a_rollback_in_the_base_picker(page, console, artifacts) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from aiconsole.prompts import versions as prompts

    settings = console.settings()
    admin = _actor(console, "admin")
    row = next(r for r in prompts.list_prompts(admin, settings=settings) if r.name == "photo-tagger")
    production = row.labels["production"]
    base = _prompts_page(page, console.url, "admin")
    option = page.get_by_role("option", name=re.compile(f"^v{production} — .*production"))
    for _ in range(3):  # the list opens on a click on the combobox once the page has settled
        base.get_by_role("combobox").click()
        try:
            option.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:  # not open yet: close whatever opened and click again
            page.keyboard.press("Escape")
    option.click()
    _wait_for_html(page, base, "[production")
    page.get_by_role("tab", name="Labels & rollback").click()
    page.get_by_role("button", name=re.compile("Roll back production to")).click()
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text(re.compile("Rolled production of photo-tagger back to version")).wait_for(timeout=30_000)
    deadline = time.monotonic() + 15
    while "production" in base.inner_html():  # the picked version is no longer production
        assert time.monotonic() < deadline, base.inner_html()
        page.wait_for_timeout(250)
    assert f"v{production} — " in base.inner_html()
    page.screenshot(path=str(artifacts / "prompt_rollback_labels.png"), full_page=False)
