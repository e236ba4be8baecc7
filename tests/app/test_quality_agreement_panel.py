"""The Agreement panel through AppTest on the seeded demo plus two photos reviewed twice (the demo reviewer
approves every tag, the demo admin, second and blind, rejects every one): a viewer sees the share, the kappa
tables and the disagreements with every control disabled; an admin saves a new share (audited) and adjudicates
a photo, whose ground truth becomes the admin's labels; a blind second reviewer approves, rejects, renames a tag
and adds a label (recorded for agreement, no tag or ground truth changed); the Quality page has the tab."""

from __future__ import annotations

from typing import Any

import pytest
from panel_apps import demo_actor, panel_app, panel_texts
from sqlalchemy import select

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import DoubleReview, PhotoTag, ReviewDecision
from aiconsole.quality import agreement, double_review, review_queue, review_reads, second_review
from aiconsole.quality.decisions import TagDecision, submit_review
from aiconsole.ui.widgets import FLASH_KEY, shown

PANEL = "aiconsole.ui.quality.agreement_panel"


@pytest.fixture(scope="module")
def doubled(demo_env: dict[str, str], passwords: dict[str, str]) -> list[int]:
    """Two demo photos reviewed by the reviewer (approve all) and then by the admin (reject all)."""
    reviewer, admin = (demo_actor(demo_env, passwords, role) for role in ("reviewer", "admin"))
    for person in (reviewer, admin):  # the demo's own second reviews still waiting are decided first (agreeing)
        while (seeded := second_review.claim_second(person)) is not None:
            second_review.submit_second_review(person, token=seeded.token, decisions=[
                TagDecision(tag_id=t.tag_id, action="approve") for t in seeded.tags])
    version = double_review.quality_settings(admin).version
    double_review.set_double_review_share(admin, share=1.0, expected_version=version)
    photos = []
    for _ in range(2):
        item = review_queue.claim_next(reviewer, order="oldest")
        assert item is not None
        submit_review(reviewer, token=item.token,
                      decisions=[TagDecision(tag_id=t.tag_id, action="approve") for t in item.tags])
        photos.append(item.photo_id)
    for _ in range(2):
        second = second_review.claim_second(admin)
        assert second is not None and second.photo_id in photos
        second_review.submit_second_review(admin, token=second.token, decisions=[
            TagDecision(tag_id=t.tag_id, action="reject", reason="wrong") for t in second.tags])
    return photos


def _reviewed_and_routed(reviewer: Actor, admin: Actor) -> tuple[Any, Any]:
    """The reviewer approves the oldest waiting photo with every photo routed to a second review: (the photo
    as claimed, the first review's outcome)."""
    double_review.set_double_review_share(admin, share=1.0,
                                          expected_version=double_review.quality_settings(admin).version)
    item = review_queue.claim_next(reviewer, order="oldest")
    assert item is not None and len(item.tags) >= 1
    first = submit_review(reviewer, token=item.token,
                          decisions=[TagDecision(tag_id=t.tag_id, action="approve") for t in item.tags])
    return item, first


def _submit(at: Any, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_viewer_sees_agreement_but_cannot_change_anything(doubled: list[int], demo_env: dict[str, str],
                                                         passwords: dict[str, str]) -> None:
    at = panel_app(PANEL, demo_actor(demo_env, passwords, "viewer"))
    assert [s.value for s in at.subheader] == ["Second reviews", "Second review", "Per label", "Per pair of reviewers",
                                               "Reviewers", "Disagreements"]
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Reviewed twice"]) >= 2
    texts = panel_texts(at)
    assert "100.0% of reviewed photos go to a second reviewer" in texts
    assert "Percent agreement" in texts
    disagreements = at.dataframe[-1].value
    assert {f"#{p}" for p in doubled} <= set(disagreements["photo"])
    mine = disagreements[disagreements["photo"].isin({f"#{p}" for p in doubled})]
    assert set(mine["first"]) == {"kept"} and set(mine["second"]) == {"rejected"}
    assert at.number_input(key="agreement_share").disabled and at.button(key="agreement_take").disabled
    assert _submit(at, "Save share").disabled and _submit(at, "Adjudicate").disabled
    assert "Your role (viewer) cannot do this." in shown(_submit(at, "Adjudicate").help)


def test_admin_saves_the_share_and_adjudicates(doubled: list[int], demo_env: dict[str, str],
                                               passwords: dict[str, str]) -> None:
    admin: Actor = demo_actor(demo_env, passwords, "admin")
    at = panel_app(PANEL, admin)
    at.number_input(key="agreement_share").set_value(20.0)
    _submit(at, "Save share").click().run()
    assert not at.exception, at.exception
    assert double_review.quality_settings(admin).double_review_share == pytest.approx(0.2)
    saved = audit.list_entries(admin, action="quality.settings")[0].after
    assert saved is not None and saved["double_review_share"] == pytest.approx(0.2)
    at = panel_app(PANEL, admin)
    chosen = at.selectbox(key="agreement_pick").value
    at.text_input(key="agreement_labels").input("Owl, bird")
    _submit(at, "Adjudicate").click().run()
    assert not at.exception, at.exception
    flashed = [shown(text) for _kind, text in at.session_state[FLASH_KEY]]
    assert any(text.endswith("ground truth is now: bird, owl.") for text in flashed), flashed
    report = agreement.agreement_report(admin)
    assert report.adjudicated >= 1
    entry = audit.list_entries(admin, action="review.adjudicate")[0]
    assert entry.entity_id == str(chosen) and entry.after == {"status": "adjudicated", "ground_truth": ["bird", "owl"]}


def test_a_blind_second_review_from_the_panel_changes_no_ground_truth(doubled: list[int], demo_env: dict[str, str],
                                                                      passwords: dict[str, str]) -> None:
    reviewer, admin = (demo_actor(demo_env, passwords, role) for role in ("reviewer", "admin"))
    item, first = _reviewed_and_routed(reviewer, admin)
    mine = panel_app(PANEL, reviewer)  # the only waiting photo is the reviewer's own
    assert "0 photos wait for you" in panel_texts(mine) and mine.button(key="agreement_take").disabled
    at = panel_app(PANEL, admin)
    at.button(key="agreement_take").click().run()
    assert not at.exception, at.exception
    assert f"Photo #{item.photo_id}: decide on each tag as the AI produced it." in panel_texts(at)
    assert [shown(r.label) for r in at.radio][:1] == [f"{item.tags[0].label} · {item.tags[0].confidence:.2f} · "
                                               f"{item.tags[0].verdict.replace('_', ' ')}"]
    at.radio(key=f"agreement_tag_{item.tags[0].tag_id}").set_value("reject").run()
    at.button(key="agreement_submit").click().run()
    assert not at.exception, at.exception
    flashed = [shown(text) for _kind, text in at.session_state[FLASH_KEY]]
    assert flashed == [f"Second review of photo #{item.photo_id} saved: {len(item.tags) - 1} approved, 1 rejected."]
    entry = audit.list_entries(admin, action="review.second_submit")[0]
    assert entry.entity_id == str(item.photo_id)
    again = second_review.claim_second(admin)
    assert again is None  # nothing else waits
    # The photo's ground truth now is still what the first review (every tag approved) made it.
    now = review_reads.review_summary(admin, review_id=first.review_id).ground_truth
    assert now == first.ground_truth == tuple(sorted({t.label for t in item.tags}))


def test_the_quality_page_has_the_agreement_tab(doubled: list[int], app_as: Any) -> None:
    at = app_as("admin")
    at.switch_page("pages/quality.py").run()
    assert not at.exception, at.exception
    assert "Agreement" in [t.label for t in at.tabs]
    assert "Reviewed twice" in {m.label for m in at.metric}


def test_a_second_reviewer_renames_a_tag_and_adds_a_label(doubled: list[int], demo_env: dict[str, str],
                                                          passwords: dict[str, str]) -> None:
    reviewer, admin = (demo_actor(demo_env, passwords, role) for role in ("reviewer", "admin"))
    item, first = _reviewed_and_routed(reviewer, admin)
    tags_before = _tags(item.photo_id)
    at = panel_app(PANEL, admin)
    at.button(key="agreement_take").click().run()
    # A label only one of its tags carries (two sources may both give it): renaming it leaves it not kept.
    renamed = next(t for t in item.tags if [x.label for x in item.tags].count(t.label) == 1)
    at.radio(key=f"agreement_tag_{renamed.tag_id}").set_value("rename").run()
    at.button(key="agreement_submit").click().run()  # no new label typed yet: refused, the photo stays held
    assert not at.exception, at.exception
    assert "The new label is empty." in panel_texts(at) and at.button(key="agreement_submit")
    # AppTest cannot type into a box (Chromium's keyboard review test does): labels the organization uses.
    present = {t.label for t in item.tags}
    box = at.selectbox(key=f"agreement_rename_{renamed.tag_id}")
    new_label = next(o for o in box.options if o not in present)
    box.set_value(new_label).run()
    adds = at.multiselect(key=f"agreement_added_{item.photo_id}")
    extra = next(o for o in adds.options if o not in present | {new_label})
    adds.set_value([extra]).run()
    at.button(key="agreement_submit").click().run()
    assert not at.exception, at.exception
    flashed = [shown(text) for _kind, text in at.session_state[FLASH_KEY]]
    assert flashed == [f"Second review of photo #{item.photo_id} saved: {len(item.tags) - 1} approved, 0 rejected, "
                       "1 renamed, 1 added."]
    with service_session() as s:
        second_id = s.scalar(select(DoubleReview.second_review_id).where(DoubleReview.photo_id == item.photo_id))
        recorded = {(d.tag_id, d.action, d.label_before, d.label_after) for d in s.scalars(
            select(ReviewDecision).where(ReviewDecision.review_id == second_id))}
    assert {(renamed.tag_id, "rename", renamed.label, new_label),
            (None, "add", None, extra)} <= recorded
    assert len(recorded) == len(item.tags) + 1
    # Agreement reads them: the renamed AI label is one the second reviewer did not keep; both new labels kept.
    found = {(d.label, d.first_kept, d.second_kept) for d in agreement.agreement_report(admin).disagreements
             if d.photo_id == item.photo_id}
    assert found == {(renamed.label, True, False), (new_label, False, True), (extra, False, True)}
    # Recorded for agreement only: the photo's tags and ground truth are still the first review's.
    assert _tags(item.photo_id) == tags_before
    assert review_reads.review_summary(admin, review_id=first.review_id).ground_truth == first.ground_truth


def _tags(photo_id: int) -> list[tuple[int, str, str]]:
    with service_session() as s:
        return [(r.id, r.label, r.review_state) for r in s.execute(
            select(PhotoTag.id, PhotoTag.label, PhotoTag.review_state).where(PhotoTag.photo_id == photo_id)
            .order_by(PhotoTag.id))]
