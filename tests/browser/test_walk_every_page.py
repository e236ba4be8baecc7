"""The walk a new user takes (issue 10): every page of the navigation for every demo role, in Chromium at
1,280 x 900, read as the browser shows it (the sidebar, the page, the data grids' headers, the charts' SVG text)
and scanned for the internals of tests/text_leaks.py, with no exception box and no email drawn as a mailto: link
on any page."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from text_leaks import leaks

from aiconsole.demo.seed import DEMO_LOGINS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAV_LINK = '[data-testid="stSidebarNavLink"]'
SETTLE_S, SETTLE_TIMEOUT_S = 0.6, 25.0


def _settled_text(page) -> str:  # type: ignore[no-untyped-def]
    """The page's text once two reads SETTLE_S apart agree and Streamlit is not running the script."""
    deadline, last = time.monotonic() + SETTLE_TIMEOUT_S, None
    while time.monotonic() < deadline:
        page.wait_for_timeout(SETTLE_S * 1000)
        running = page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").count()
        text = page.locator("body").inner_text()
        if not running and text == last:
            return text
        last = text
    return last or ""


def _grid_headers(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Every data grid's column headers. (Its cells are drawn on a canvas; the accessible table behind it holds
    the raw values, not the drawn text, so tests/app/test_text_hygiene.py reads cells as the grid draws them.)"""
    return [t for t in page.locator('[data-testid="stDataFrame"] th').all_inner_texts() if t.strip()]


@pytest.mark.parametrize("role", [r for _email, _password, r in DEMO_LOGINS])
def test_every_page_for_the_role_shows_no_internals(browser, console_url: str, log_in: Callable[..., None],  # type: ignore[no-untyped-def]
                                                    artifacts: Path, role: str) -> None:
    email, password, _ = next(x for x in DEMO_LOGINS if x[2] == role)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in(page, console_url, email, password)
        links = page.locator(NAV_LINK)
        links.first.wait_for(timeout=30_000)
        titles = [t.strip().splitlines()[-1].strip() for t in links.all_inner_texts()]  # after the icon name
        assert len(titles) >= 2, titles
        found: list[str] = []
        for i, title in enumerate(titles):
            page.locator(NAV_LINK).nth(i).click()
            page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
            text = _settled_text(page)
            page.screenshot(path=str(artifacts / f"walk_{role}_{i:02d}.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, f"{title}: an exception is shown"
            mailto = page.locator('a[href^="mailto:"]').all_inner_texts()
            found += [f"{title}: an address drawn as a mailto: link: {t!r}" for t in mailto]
            for line in [*text.splitlines(), *_grid_headers(page)]:
                found += [f"{title}: {leak}: {line.strip()[:160]!r}" for leak in leaks(line)]
        assert not found, "\n".join(sorted(set(found)))
    finally:
        context.close()
