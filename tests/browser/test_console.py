"""The console in a real browser: log in, Live Status cards and charts, the Users page, log out."""

from __future__ import annotations

import re

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


def test_wrong_password_is_refused(page, console_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(console_url)
    page.get_by_role("textbox", name="Email").fill("admin@demo.aiconsole.dev")
    page.get_by_role("textbox", name="Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Wrong email or password").wait_for(timeout=20_000)


def test_admin_sees_live_status_with_cards_and_charts(page, console_url: str, artifacts) -> None:  # type: ignore[no-untyped-def]
    _login(page, console_url, "admin")
    metrics = page.locator('[data-testid="stMetric"]')
    metrics.nth(8).wait_for(timeout=30_000)  # all nine status cards
    for label in ("Processed today", "Pending", "Needs review", "Spend today", "Month to date"):
        assert page.get_by_text(label, exact=True).first.is_visible(), label
    page.locator(".js-plotly-plot").nth(3).wait_for(timeout=30_000)  # throughput, donut, spend, budgets
    assert page.get_by_text("Demo data").first.is_visible()
    page.screenshot(path=str(artifacts / "live_status.png"), full_page=True)


def test_users_page_and_logout(page, console_url: str, artifacts) -> None:  # type: ignore[no-untyped-def]
    _login(page, console_url, "admin")
    page.get_by_role("link", name="Users").click()
    page.get_by_role("heading", name=re.compile("Users")).wait_for(timeout=30_000)
    # The table is a canvas grid; its presence and the forms below it are what the DOM shows.
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
    page.get_by_text("Add a user").first.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "users.png"), full_page=True)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)


def test_viewer_has_no_users_page(page, console_url: str) -> None:  # type: ignore[no-untyped-def]
    _login(page, console_url, "viewer")
    assert page.get_by_role("link", name="Users").count() == 0


def test_upload_queues_good_photos_and_explains_bad_ones(page, console_url: str, artifacts) -> None:  # type: ignore[no-untyped-def]
    from aiconsole.providers.samples import sample_photo

    _login(page, console_url, "admin")
    page.get_by_text("Upload photos to the queue").click()
    page.locator('input[type="file"]').set_input_files([
        {"name": "astronaut.jpg", "mimeType": "image/jpeg", "buffer": sample_photo("astronaut", 7)},
        {"name": "report.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.4 not a photo at all" * 10},
    ])
    page.get_by_role("button", name=re.compile(r"Queue 2 files")).click()
    page.get_by_role("button", name="Confirm").click()
    try:
        page.get_by_text("1 queued, 0 already known, 1 rejected").wait_for(timeout=30_000)
        page.get_by_text("Some files were not queued").wait_for(timeout=30_000)
    except Exception as exc:
        # Seen once in CI (the click never reached intake): keep what the page showed for the next look.
        page.screenshot(path=str(artifacts / "upload_failure.png"), full_page=True)
        raise AssertionError(f"no upload verdict; the page said:\n{page.inner_text('body')[:4000]}") from exc
    page.screenshot(path=str(artifacts / "upload.png"), full_page=True)
