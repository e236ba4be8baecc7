"""A full review by keyboard in Chromium (issue 11 section 1): start, approve, reject and pick the reason, rename
to a new label, add a tag, approve the rest, submit and get the next photo, then undo the last review: every
key through streamlit-shortcuts and the page's guard, the outcome read from the console's database."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from aiconsole.demo.seed import DEMO_LOGINS
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import GroundTruth, PhotoTag, Review, ReviewDecision

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 30_000
PHOTO = re.compile(r"photo #([\d,]+) ·")


def _toggle(page, number: int, decision: str):  # type: ignore[no-untyped-def]
    """Tag `number`'s button once it shows `decision` (the rerun after a key press has drawn it)."""
    # While a rerun draws the page, the last run's elements stay until they are replaced: the first one counts.
    button = page.locator(f".st-key-rv_toggle_{number} button").filter(has_text=f"{number} · {decision}").first
    button.wait_for(timeout=WAIT_MS)
    return button


def _reason_shown(page, text: str) -> None:  # type: ignore[no-untyped-def]
    """The (one) reason box shows `text` (its value is the combobox input's)."""
    page.wait_for_function("t => Array.from(document.querySelectorAll('input[aria-label=\"Reason\"]'))"
                           ".some(i => i.value === t)", arg=text, timeout=WAIT_MS)


def _photo_id(page) -> int:  # type: ignore[no-untyped-def]
    caption = page.get_by_text(PHOTO).first
    caption.wait_for(timeout=WAIT_MS)
    match = PHOTO.search(caption.inner_text())
    assert match, caption.inner_text()
    return int(match.group(1).replace(",", ""))


def _type_into_box(page, key: str, text: str, box_label: str) -> None:  # type: ignore[no-untyped-def]
    """`key` puts the cursor in a box; type, Enter takes the new label, and the cursor leaves the box by itself
    once the label is drawn (Esc right after Enter would have the box revert a value not yet drawn)."""
    page.keyboard.press(key)
    page.wait_for_function(f"() => document.activeElement && document.activeElement.getAttribute('aria-label') "
                           f"=== {box_label!r}", timeout=WAIT_MS)
    page.keyboard.type(text, delay=30)
    page.get_by_role("option", name=re.compile(re.escape(text))).first.wait_for(timeout=WAIT_MS)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement === document.body", timeout=WAIT_MS)


def test_a_full_review_by_keyboard(browser, console, log_in: Callable[..., None], artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    email, password, _ = next(x for x in DEMO_LOGINS if x[2] == "reviewer")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        log_in(page, console.url, email, password)
        page.goto(console.url + "/quality")
        page.get_by_role("button", name=re.compile("Start reviewing")).wait_for(timeout=WAIT_MS)
        page.wait_for_function("() => !!window.__aiconsoleShortcutsInner", timeout=WAIT_MS)  # keys are bound
        page.keyboard.press("n")
        _toggle(page, 1, "undecided")
        photo = _photo_id(page)
        with service_session(settings=console.settings()) as s:
            tags = [t.id for t in s.scalars(select(PhotoTag).where(PhotoTag.photo_id == photo,
                                                                    PhotoTag.reviewed_at.is_(None)))]
        assert len(tags) >= 3, "the demo's lowest-confidence photos carry several tags"
        page.keyboard.press("1")
        _toggle(page, 1, "approve")
        page.keyboard.press("2")
        _toggle(page, 2, "approve")
        page.keyboard.press("r")  # the selected tag (2) rejected: wrong
        _toggle(page, 2, "reject")
        _reason_shown(page, "reason: wrong")
        page.keyboard.press("r")  # again: the next reason
        _reason_shown(page, "reason: too generic")
        page.keyboard.press("3")
        _toggle(page, 3, "approve")
        _type_into_box(page, "e", "kitten mittens", "Rename to")
        _toggle(page, 3, "rename")
        # Typing in a box is text, not keys: 'a' and 'n' in the label neither approved nor submitted anything.
        _type_into_box(page, "t", "picnic blanket", "Add missing tags")
        if len(tags) >= 4:
            assert _toggle(page, 4, "undecided").count() == 1
        assert _photo_id(page) == photo
        page.screenshot(path=str(artifacts / "quality_keyboard_decided.png"), full_page=True)
        page.keyboard.press("a")
        last = min(len(tags), 9)  # tags 1-3 are decided; approve all takes the rest
        if last >= 4:
            _toggle(page, last, "approve")
        page.keyboard.press("Enter")
        page.get_by_text(re.compile(r"Photo #[\d,]+ saved: \d+ approved, 1 rejected, 1 renamed, 1 added\.")) \
            .wait_for(timeout=WAIT_MS)
        _toggle(page, 1, "undecided")
        nxt = _photo_id(page)
        assert nxt != photo
        with service_session(settings=console.settings()) as s:
            review = s.scalars(select(Review).where(Review.photo_id == photo).order_by(Review.id.desc())
                               .limit(1)).one()
            rows = {r.tag_id: (r.action, r.reason, r.label_after) for r in s.execute(
                select(ReviewDecision.tag_id, ReviewDecision.action, ReviewDecision.reason,
                       ReviewDecision.label_after).where(ReviewDecision.review_id == review.id))}
            labels = {t.id: t.label for t in s.scalars(select(PhotoTag).where(PhotoTag.photo_id == photo))}
            truth = set(s.scalars(select(GroundTruth.label).where(GroundTruth.photo_id == photo)))
        first, second, third, *rest = tags_in_screen_order(console, photo, tags)
        assert rows[first][0] == "approve"
        assert rows[second] == ("reject", "too_generic", None)
        assert rows[third] == ("rename", None, "kitten mittens")
        assert all(rows[t][0] == "approve" for t in rest)
        assert ("add", None, "picnic blanket") in rows.values()
        assert truth == {labels[first], "kitten mittens", "picnic blanket", *(labels[t] for t in rest)}
        # z with nothing changed on this photo undoes the review just submitted: the photo is back, and held.
        page.keyboard.press("z")
        page.get_by_text(re.compile(r"Review of photo #[\d,]+ undone")).wait_for(timeout=WAIT_MS)
        assert _photo_id(page) == photo
        with service_session(settings=console.settings()) as s:
            assert s.get(Review, review.id) is None
        page.screenshot(path=str(artifacts / "quality_keyboard_undone.png"), full_page=True)
    except BaseException:
        page.screenshot(path=str(artifacts / "quality_keyboard_failed.png"), full_page=True)
        raise
    finally:
        context.close()


def tags_in_screen_order(console, photo: int, tags: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    """The photo's tags as the screen numbers them: highest confidence first, then by id (review_tags' order)."""
    with service_session(settings=console.settings()) as s:
        rows = s.execute(select(PhotoTag.id, PhotoTag.confidence).where(PhotoTag.id.in_(tags))).all()
    return [r.id for r in sorted(rows, key=lambda r: (-r.confidence, r.id))]
