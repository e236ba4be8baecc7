"""The Pipeline page in a 1,280 px window: every column of the models table, the cost basis included, is in view
(the grid does not scroll sideways)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aiconsole.demo.seed import DEMO_LOGINS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_models_table_fits_a_1280_px_window(browser, console_url: str, log_in: Callable[..., None],  # type: ignore[no-untyped-def]
                                                artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        email, password, _ = next(x for x in DEMO_LOGINS if x[2] == "admin")
        log_in(page, console_url, email, password)
        page.get_by_role("link", name="Pipeline").click()
        grid = page.locator('[data-testid="stDataFrame"]').first
        grid.wait_for(timeout=30_000)
        grid.locator("th").nth(5).wait_for(state="attached", timeout=30_000)
        scroller = grid.locator(".dvn-scroller").first
        scroll_width, client_width = scroller.evaluate("s => [s.scrollWidth, s.clientWidth]")
        page.screenshot(path=str(artifacts / "pipeline_1280.png"))
        assert scroll_width <= client_width, f"the models table is {scroll_width} px wide in {client_width} px"
        headers = grid.locator("th").all_inner_texts()
        assert [h for h in headers if h] == ["provider", "model", "$ / 1,000", "cost basis", "photos", "conf.",
                                             "review", "errors", "p95"]
    finally:
        context.close()
