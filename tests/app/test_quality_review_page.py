"""The Quality page's Review tab through app.py on the seeded demo (AppTest): a reviewer starts, approves,
rejects with a reason, renames, adds, submits and gets the next photo; skip, undo (a change, then the
submitted review), previous; refusals keep the photo; viewers and analysts see the queue with every action
disabled; an admin reviews; logout gives the claim back; no internals leak into what the screen shows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import GroundTruth, PhotoTag, Review, ReviewClaim, ReviewDecision
from aiconsole.quality.review_queue import RANDOM_ORDER_NOTE, ReviewItem, release_all
from aiconsole.ui.quality import review_keys as keys
from aiconsole.ui.quality import review_state as state
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.shell import PAGES
from aiconsole.ui.widgets import shown

PAGE = "pages/quality.py"
_spec = importlib.util.spec_from_file_location("hygiene_helpers", Path(__file__).parent / "test_text_hygiene.py")
assert _spec is not None and _spec.loader is not None
hygiene = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hygiene  # its dataclasses look their module up there
_spec.loader.exec_module(hygiene)


def texts(at: AppTest, kind: str) -> list[str]:
    return [shown(e.value) for e in getattr(at, kind)]


def open_review(app_as: Any, role: str) -> AppTest:
    at = app_as(role)
    release_all(at.session_state[ACTOR_KEY])  # each test starts with nothing held
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def press(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def held(at: AppTest) -> ReviewItem:
    item = at.session_state[state.ITEM]
    assert item is not None
    return item  # type: ignore[no-any-return]


def gen_key(at: AppTest, part: str, tag_id: int | None = None) -> str:
    gen = at.session_state[state.GEN]
    return f"rv_g{gen}_{part}" if tag_id is None else f"rv_g{gen}_{part}_{tag_id}"


def claims_of(actor: Actor) -> list[int]:
    with service_session() as s:
        return list(s.scalars(select(ReviewClaim.photo_id).where(ReviewClaim.reviewer_id == actor.user_id)))


def test_the_quality_page_is_in_the_table_with_review_first() -> None:
    page = next(p for p in PAGES if p.key == "quality")
    assert (page.title, page.icon, page.permission, page.script) == ("Quality", ":material/fact_check:",
                                                                      "quality.view", PAGE)
    from aiconsole.ui.quality.quality_page import TABS

    assert TABS[0][0] == "Review"


def test_a_reviewer_decides_every_way_submits_and_gets_the_next_photo(app_as: Any) -> None:
    at = open_review(app_as, "reviewer")
    actor = at.session_state[ACTOR_KEY]
    assert at.tabs[0].label == "Review"
    assert at.button(key=keys.NEXT).label == "Start reviewing" and not claims_of(actor)  # nothing claimed yet
    press(at, keys.NEXT)
    item = held(at)
    assert len(item.tags) >= 3, "the demo's low-confidence photos carry several tags"
    assert claims_of(actor) == [item.photo_id]
    first, second, third, *rest = item.tags
    press(at, keys.toggle_key(1))  # approve
    press(at, keys.toggle_key(2))
    press(at, keys.toggle_key(2))  # approve -> reject, with the default reason
    assert at.button(key=keys.toggle_key(2)).label == "2 · reject"
    at.selectbox(key=gen_key(at, "reason", second.tag_id)).set_value("too_generic").run()
    # One of the organization's labels (AppTest picks listed options only; the browser test types a new one).
    rename = at.selectbox(key=gen_key(at, "rename", third.tag_id))
    new_label = next(o for o in rename.options if o not in {t.label for t in item.tags})
    rename.set_value(new_label).run()
    assert at.button(key=keys.toggle_key(3)).label == "3 · rename"
    at.multiselect(key=gen_key(at, "added")).set_value(["picnic blanket"]).run()
    press(at, keys.APPROVE_ALL)  # the rest
    assert [at.button(key=keys.toggle_key(i + 4)).label for i in range(len(rest[:6]))] == [
        f"{i + 4} · approve" for i in range(len(rest[:6]))]
    press(at, keys.NEXT)
    assert any(s.startswith(f"Photo #{item.photo_id:,} saved: {1 + len(rest)} approved, 1 rejected, 1 renamed, "
                            "1 added.") for s in texts(at, "success")), texts(at, "success")
    nxt = held(at)
    assert nxt.photo_id != item.photo_id and claims_of(actor) == [nxt.photo_id]
    assert {m.label: m.value for m in at.metric}["Reviewed this session"] == "1"
    with service_session() as s:
        review = s.scalars(select(Review).where(Review.photo_id == item.photo_id)).one()
        rows = s.execute(select(ReviewDecision.tag_id, ReviewDecision.action, ReviewDecision.reason,
                                ReviewDecision.label_after).where(ReviewDecision.review_id == review.id)).all()
        truth = set(s.scalars(select(GroundTruth.label).where(GroundTruth.photo_id == item.photo_id)))
    by_tag = {r.tag_id: (r.action, r.reason, r.label_after) for r in rows}
    assert by_tag[first.tag_id] == ("approve", None, first.label)
    assert by_tag[second.tag_id] == ("reject", "too_generic", None)
    assert by_tag[third.tag_id] == ("rename", None, new_label)
    assert ("add", None, "picnic blanket") in by_tag.values()
    assert truth == {first.label, new_label, "picnic blanket", *(t.label for t in rest)} - {second.label}


def test_skip_undo_and_previous(app_as: Any) -> None:
    at = press(open_review(app_as, "reviewer"), keys.NEXT)
    actor = at.session_state[ACTOR_KEY]
    skipped = held(at)
    press(at, keys.SKIP)
    item = held(at)
    assert item.photo_id != skipped.photo_id and claims_of(actor) == [item.photo_id]
    # z undoes the last change on the photo first.
    press(at, keys.toggle_key(1))
    assert at.button(key=keys.toggle_key(1)).label == "1 · approve"
    press(at, keys.UNDO)
    assert at.button(key=keys.toggle_key(1)).label == "1 · undecided"
    # A submit with an undecided tag is refused and keeps the photo.
    press(at, keys.NEXT)
    assert any("still undecided" in e for e in texts(at, "error")), texts(at, "error")
    assert held(at).photo_id == item.photo_id
    press(at, keys.APPROVE_ALL)
    press(at, keys.NEXT)
    assert held(at).photo_id != item.photo_id
    # p shows what the last review decided; z (nothing changed on this photo) undoes that review.
    press(at, keys.PREVIOUS)
    assert any(t.startswith(f"**Previous: photo #{item.photo_id:,}**") for t in texts(at, "markdown"))
    assert any(t.startswith("approved ") for t in texts(at, "caption"))
    press(at, keys.UNDO)
    assert any(s.startswith(f"Review of photo #{item.photo_id:,} undone") for s in texts(at, "success"))
    assert held(at).photo_id == item.photo_id and claims_of(actor) == [item.photo_id]  # back, and mine again
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Review).where(Review.photo_id == item.photo_id)) == 0
        assert set(s.scalars(select(PhotoTag.reviewed_at).where(PhotoTag.photo_id == item.photo_id))) == {None}
    assert any("No review to show" in i for i in texts(at, "info"))


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_viewers_and_analysts_see_the_queue_but_cannot_act(app_as: Any, role: str) -> None:
    at = open_review(app_as, role)
    assert not at.exception
    for key in (keys.NEXT, keys.APPROVE_ALL, keys.REJECT, keys.SKIP, keys.UNDO, keys.PREVIOUS):
        button = at.button(key=key)
        assert button.disabled, key
        assert shown(button.help) == f"Your role ({role}) cannot do this.", (key, button.help)
    assert any(f"Your role ({role}) sees the queue but cannot review" in i for i in texts(at, "info"))
    queue = {m.label: m.value for m in at.metric}["Queue left"]
    assert queue not in ("0", "—"), "the demo leaves photos awaiting review"


def test_an_admin_reviews(app_as: Any) -> None:
    at = press(open_review(app_as, "admin"), keys.NEXT)
    item = held(at)
    press(at, keys.APPROVE_ALL)
    press(at, keys.NEXT)
    # The photo's newest review (a photo tagged again after an earlier review has that one too).
    with service_session() as s:
        review = s.scalars(select(Review).where(Review.photo_id == item.photo_id)
                           .order_by(Review.id.desc()).limit(1)).one()
    assert review.reviewer_id == at.session_state[ACTOR_KEY].user_id and review.claim_token == item.token


def test_random_order_says_why_it_is_unbiased_and_filters_narrow_the_queue(app_as: Any) -> None:
    at = open_review(app_as, "reviewer")
    at.radio(key="rv_order").set_value("random").run()
    assert RANDOM_ORDER_NOTE in texts(at, "caption")
    # The random sample's screen counts the band's photos (the backlog) and says what the sample draws from.
    everything = int({m.label: m.value for m in at.metric}["Needing review"].replace(",", ""))
    assert any(c.startswith("The random sample draws from") for c in texts(at, "caption"))
    for label in at.selectbox(key="rv_f_label").options[:10]:  # the first of the most used labels in the band
        at.selectbox(key="rv_f_label").set_value(label).run()
        narrowed = int({m.label: m.value for m in at.metric}["Needing review"].replace(",", ""))
        if narrowed:
            break
    assert 0 < narrowed < everything
    press(at, keys.NEXT)
    assert label in [t.label for t in held(at).tags]


def test_logout_gives_the_photo_back(app_as: Any) -> None:
    at = press(open_review(app_as, "reviewer"), keys.NEXT)
    actor = at.session_state[ACTOR_KEY]
    assert claims_of(actor) == [held(at).photo_id]
    at.button(key="logout").click().run()
    assert claims_of(actor) == []


def test_the_review_screen_leaks_no_internals(app_as: Any) -> None:
    at = press(open_review(app_as, "reviewer"), keys.NEXT)
    press(at, keys.toggle_key(1))
    press(at, keys.toggle_key(1))  # a reject shows its reason picker
    press(at, keys.PREVIOUS)
    at.toggle(key="rv_zoom").set_value(True).run()
    photo_id, zoomed, jpeg = at.session_state[state.IMAGE]
    assert (photo_id, zoomed) == (held(at).photo_id, True) and jpeg, "the photo at every pixel"
    found = sorted(set(hygiene.read_page(at)))
    assert found == [], found


def test_undo_takes_back_a_reason_picked_in_its_box(app_as: Any) -> None:
    at = press(open_review(app_as, "reviewer"), keys.NEXT)
    tag = held(at).tags[0]
    press(at, keys.toggle_key(1))
    press(at, keys.toggle_key(1))
    reason = gen_key(at, "reason", tag.tag_id)
    at.selectbox(key=reason).set_value("duplicate").run()
    press(at, keys.REJECT)  # again on a rejected tag: the next reason
    assert at.selectbox(key=reason).value == "offensive"
    press(at, keys.UNDO)
    assert at.selectbox(key=reason).value == "duplicate"
    press(at, keys.UNDO)
    assert at.selectbox(key=reason).value == "wrong"
    press(at, keys.UNDO)
    assert at.button(key=keys.toggle_key(1)).label == "1 · approve"


def test_an_empty_queue_says_what_to_do_next(app_as: Any) -> None:
    at = open_review(app_as, "reviewer")
    at.selectbox(key="rv_f_model").set_value("builtin/latest").run()  # a model the demo's history never ran
    assert {m.label: m.value for m in at.metric}["Queue left"] == "0"
    press(at, keys.NEXT)
    assert "Nothing awaits review in this order with these filters." in texts(at, "success")
    assert any(c.startswith("Next: try the random sample") for c in texts(at, "caption"))
    assert at.button(key=keys.NEXT).label == "Check again" and not claims_of(at.session_state[ACTOR_KEY])
