"""Reviewer agreement on SQLite and PostgreSQL: the second-review share (validated, version-checked, audited,
admins only), the deterministic routing draw, the blind second review (the first reviewer cannot take their
own photo; the AI's tags only; no tag or ground truth changes; a double submit records once), kappa and
percent agreement per label and per pair against a hand-worked history (scikit-learn as the reference),
disagreements, adjudication (ground truth, audit, refusals) and reviewer figures (agreement with the
adjudicated answer, reviews per active hour)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import func, select
from unit_helpers import load_unit_module

from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import DoubleReview, GroundTruth, PhotoTag, Review
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import agreement, double_review, second_review
from aiconsole.quality import review_queue as rq
from aiconsole.quality.agreement import Table2x2, kappa
from aiconsole.quality.decisions import TagDecision, submit_review
from aiconsole.quality.stats import agreement as stats_agreement

h = load_unit_module("test_review_queue")
NOW = h.NOW


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Agreement Org")


def _share(team: Any, share: float) -> None:
    version = double_review.quality_settings(team.admin).version
    double_review.set_double_review_share(team.admin, share=share, expected_version=version)


def _expand(t: Table2x2) -> tuple[list[int], list[int]]:
    pairs = [(1, 1)] * t.both + [(1, 0)] * t.first_only + [(0, 1)] * t.second_only + [(0, 0)] * t.neither
    return [a for a, _ in pairs], [b for _, b in pairs]


def test_kappa_from_a_2x2_table_known_answer_and_references() -> None:
    # By hand: observed 35/50 = 0.7; marginals 0.5 and 0.6, chance 0.5*0.6 + 0.5*0.4 = 0.5; kappa 0.2/0.5 = 0.4.
    t = Table2x2(both=20, first_only=5, second_only=10, neither=15)
    a = kappa(t)
    assert a is not None and (a.n, a.observed, a.expected) == (50, 0.7, 0.5)
    assert a.kappa == pytest.approx(0.4)
    first, second = _expand(t)
    assert a.kappa == pytest.approx(cohen_kappa_score(first, second))
    assert a == pytest.approx(stats_agreement(first, second))
    assert kappa(Table2x2(0, 0, 0, 0)) is None
    same = kappa(Table2x2(4, 0, 0, 0))
    assert same is not None and same.observed == 1.0 and same.kappa is None  # chance agreement is perfect


def test_routing_draw_is_deterministic_and_follows_the_share() -> None:
    photos = range(1, 201)
    assert [double_review.draw(7, p) for p in photos] == [double_review.draw(7, p) for p in photos]
    assert all(0.0 <= double_review.draw(7, p) < 1.0 for p in photos)
    assert sum(double_review.routed(7, p, 1.0) for p in photos) == 200
    assert sum(double_review.routed(7, p, 0.0) for p in photos) == 0
    half = sum(double_review.routed(7, p, 0.5) for p in photos)
    assert 80 <= half <= 120, half  # binomial(200, 0.5): 3 standard deviations is about 21
    # Another organization draws other photos.
    assert [double_review.routed(7, p, 0.5) for p in photos] != [double_review.routed(8, p, 0.5) for p in photos]


def test_share_setting_is_validated_version_checked_audited_and_for_admins(team: Any) -> None:
    view = double_review.quality_settings(team.viewer)
    assert (view.double_review_share, view.version, view.updated_by) == (0.05, 0, None)
    with pytest.raises(PermissionDenied, match=r"quality\.configure"):
        double_review.set_double_review_share(team.first, share=0.5, expected_version=0)
    for bad in (1.5, -0.1, True, float("nan")):
        with pytest.raises(ValidationFailed):
            double_review.set_double_review_share(team.admin, share=bad, expected_version=0)
    assert double_review.set_double_review_share(team.admin, share=0.2, expected_version=0) == 1
    with pytest.raises(ConflictError, match="now version 1, by ada"):
        double_review.set_double_review_share(team.admin, share=0.3, expected_version=0)
    assert double_review.set_double_review_share(team.admin, share=0.3, expected_version=1) == 2
    view = double_review.quality_settings(team.viewer)
    assert (view.double_review_share, view.version, view.updated_by) == (0.3, 2, team.admin.email)
    entries = list_entries(team.admin, action="quality.settings")
    assert [(e.before, e.after) for e in entries] == [
        ({"double_review_share": 0.2, "version": 1}, {"double_review_share": 0.3, "version": 2}),
        ({"double_review_share": 0.05, "version": 0}, {"double_review_share": 0.2, "version": 1})]


def _first_review(team: Any, photo: int, decide: dict[str, TagDecision | str], minute: int = 0,
                  added: tuple[str, ...] = ()) -> int:
    item = h.claim(team.first, order="oldest", now=NOW + timedelta(minutes=minute))
    assert item.photo_id == photo
    submit_review(team.first, token=item.token, now=NOW + timedelta(minutes=minute), added=added,
                  decisions=[_decision(t, decide[t.label]) for t in item.tags])
    return photo


def _decision(tag: Any, how: TagDecision | str) -> TagDecision:
    if isinstance(how, TagDecision):
        return TagDecision(tag_id=tag.tag_id, action=how.action, reason=how.reason, label=how.label)
    return TagDecision(tag_id=tag.tag_id, action=how, reason="wrong" if how == "reject" else None)


def _state(photo: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    with service_session() as s:
        tags = s.execute(select(PhotoTag.label, PhotoTag.review_state).where(PhotoTag.photo_id == photo)
                         .order_by(PhotoTag.label)).all()
        truth = s.execute(select(GroundTruth.label, GroundTruth.source).where(GroundTruth.photo_id == photo)
                          .order_by(GroundTruth.label)).all()
    return [(r[0], r[1]) for r in tags], [(r[0], r[1]) for r in truth]


def _doubles() -> list[tuple[int, str]]:
    with service_session() as s:
        return [(r.photo_id, r.status) for r in s.execute(
            select(DoubleReview.photo_id, DoubleReview.status).order_by(DoubleReview.id))]


def test_routing_on_submit_follows_the_share(team: Any) -> None:
    photos = [h.add_photo(team.org, [("cat", 0.5, "needs_review")], minute=i) for i in range(3)]
    _share(team, 0.0)
    _first_review(team, photos[0], {"cat": "approve"})
    assert _doubles() == []
    _share(team, 1.0)
    _first_review(team, photos[1], {"cat": "approve"}, minute=1)
    assert _doubles() == [(photos[1], "waiting")]


def test_second_review_is_blind_changes_nothing_and_records_once(team: Any) -> None:
    _share(team, 1.0)
    photo = h.add_photo(team.org, [("cat", 0.5, "needs_review"), ("sofa", 0.3, "rejected")])
    _first_review(team, photo, {"cat": TagDecision(0, "rename", label="kitten"), "sofa": "reject"},
                  added=("pet",))
    before = _state(photo)
    assert before == ([("kitten", "corrected"), ("pet", "accepted"), ("sofa", "rejected")],
                      [("kitten", "review"), ("pet", "review")])
    assert second_review.claim_second(team.first, now=NOW) is None  # Rita reviewed it first
    assert second_review.waiting_count(team.first) == 0 and second_review.waiting_count(team.second) == 1
    with pytest.raises(PermissionDenied):
        second_review.claim_second(team.viewer, now=NOW)
    item = second_review.claim_second(team.second, now=NOW)
    assert item is not None and (item.photo_id, item.queue_order) == (photo, "second_review")
    # As the AI produced them: the labels before any decision, their confidence and verdict; no 'kitten', no 'pet'.
    assert [(t.label, t.confidence, t.verdict) for t in item.tags] == [("cat", 0.5, "needs_review"),
                                                                        ("sofa", 0.3, "rejected")]
    again = second_review.claim_second(team.second, now=NOW + timedelta(seconds=5))
    assert again is not None and again.token == item.token  # resumed
    assert rq.claim_next(team.first, now=NOW) is None  # the first queue does not hand it out
    decisions = [TagDecision(tag_id=t.tag_id, action="approve") for t in item.tags]
    out = second_review.submit_second_review(team.second, token=item.token, decisions=decisions, now=NOW)
    assert (out.recorded, out.approved, out.ground_truth) == (True, 2, ("kitten", "pet"))
    assert _state(photo) == before
    assert _doubles() == [(photo, "reviewed")]
    repeat = second_review.submit_second_review(team.second, token=item.token, decisions=decisions, now=NOW)
    assert (repeat.recorded, repeat.review_id) == (False, out.review_id)
    with service_session() as s:
        orders = s.scalars(select(Review.queue_order).where(Review.photo_id == photo).order_by(Review.id)).all()
    assert orders == ["oldest", "second_review"]
    assert len(list_entries(team.admin, action="review.second_submit")) == 1
    assert second_review.claim_second(team.second, now=NOW) is None  # nothing waits any more


def test_a_second_review_claim_cannot_be_submitted_as_a_first_review(team: Any) -> None:
    _share(team, 1.0)
    photo = h.add_photo(team.org, [("cat", 0.5, "needs_review")])
    _first_review(team, photo, {"cat": "approve"})
    item = second_review.claim_second(team.second, now=NOW)
    assert item is not None
    with pytest.raises(ConflictError):
        submit_review(team.second, token=item.token, added=("dog",), now=NOW, decisions=[])
    assert _state(photo) == ([("cat", "accepted")], [("cat", "review")])
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 1


def _history(team: Any) -> list[int]:
    """Three photos tagged cat and dog; Rita reviews first, Rob second (times in the module's hand-worked
    figures): P1 cat (1,1) dog (1,0); P2 cat (1,1) dog (0,0); P3 cat (0,1) kitten (1,0) dog (1,1)."""
    _share(team, 1.0)
    photos = [h.add_photo(team.org, [("cat", 0.6, "needs_review"), ("dog", 0.5, "needs_review")], minute=i)
              for i in range(3)]
    rename = TagDecision(0, "rename", label="kitten")
    Decide = dict[str, TagDecision | str]
    firsts: list[Decide] = [{"cat": "approve", "dog": "approve"}, {"cat": "approve", "dog": "reject"},
                            {"cat": rename, "dog": "approve"}]
    for minute, (photo, decide) in zip((0, 10, 70), zip(photos, firsts, strict=True), strict=True):
        _first_review(team, photo, decide, minute=minute)
    seconds: list[Decide] = [{"cat": "approve", "dog": "reject"}, {"cat": "approve", "dog": "reject"},
                             {"cat": "approve", "dog": "approve"}]
    for photo, decide in zip(photos, seconds, strict=True):
        when = NOW + timedelta(hours=2)
        item = second_review.claim_second(team.second, now=when)
        assert item is not None and item.photo_id == photo
        second_review.submit_second_review(team.second, token=item.token, now=when,
                                           decisions=[_decision(t, decide[t.label]) for t in item.tags])
    return photos


def test_agreement_per_label_and_pair_against_hand_worked_answers(team: Any) -> None:
    photos = _history(team)
    report = agreement.agreement_report(team.viewer, now=NOW + timedelta(hours=3))
    assert (report.waiting, report.reviewed, report.adjudicated) == (0, 3, 0)
    # Items: P1 cat, P1 dog, P2 cat, P2 dog, P3 cat, P3 kitten, P3 dog.
    first, second = [1, 1, 1, 0, 0, 1, 1], [1, 0, 1, 0, 1, 0, 1]
    overall = report.overall
    assert overall.table == Table2x2(both=3, first_only=2, second_only=1, neither=1)
    assert overall.agreement is not None
    assert overall.agreement.observed == pytest.approx(4 / 7)
    assert overall.agreement.kappa == pytest.approx(2 / 23)  # (28/49 - 26/49) / (23/49)
    assert overall.agreement.kappa == pytest.approx(cohen_kappa_score(first, second))
    assert [x.name for x in report.labels] == ["cat", "dog", "kitten"]
    tables = {x.name: x.table for x in report.labels}
    figures = {x.name: (x.agreement.observed, x.agreement.kappa) for x in report.labels if x.agreement}
    assert tables == {"cat": Table2x2(2, 0, 1, 0), "dog": Table2x2(1, 1, 0, 1), "kitten": Table2x2(0, 1, 0, 0)}
    # cat: observed 2/3, chance 2/3 * 1 = 2/3, kappa 0; dog: 2/3, chance 4/9, kappa 0.4; kitten: 0 of 1.
    assert figures["cat"] == pytest.approx((2 / 3, 0.0))
    assert figures["dog"] == pytest.approx((2 / 3, 0.4))
    assert figures["kitten"] == pytest.approx((0.0, 0.0))
    assert [(p.name, p.table) for p in report.pairs] == [(f"{team.first.email} / {team.second.email}",
                                                          overall.table)]
    assert [(d.photo_id, d.label, d.first_kept, d.second_kept) for d in report.disagreements] == [
        (photos[0], "dog", True, False), (photos[2], "cat", False, True), (photos[2], "kitten", True, False)]
    assert {d.first_reviewer for d in report.disagreements} == {team.first.email}
    pace = {r.email: r for r in report.reviewers}
    # Rita: 3 reviews at 09:00, 09:10 and 10:10 (2 active hours); Rob: 3 second reviews at 11:00.
    assert (pace[team.first.email].reviews, pace[team.first.email].active_hours) == (3, 2)
    assert pace[team.first.email].per_hour == 1.5
    assert (pace[team.second.email].second_reviews, pace[team.second.email].per_hour) == (3, 3.0)
    assert pace[team.first.email].adjudicated_agreement is None
    other = h.make_team("Other Org")  # another organization sees none of it
    assert agreement.agreement_report(other.viewer).overall.table.n == 0


def test_adjudication_is_ground_truth_audited_and_scores_reviewers(team: Any) -> None:
    photos = _history(team)
    report = agreement.agreement_report(team.admin, now=NOW + timedelta(hours=3))
    third = next(d.double_review_id for d in report.disagreements if d.photo_id == photos[2])
    tags_before = _state(photos[2])[0]
    with pytest.raises(PermissionDenied, match=r"quality\.adjudicate"):
        agreement.adjudicate(team.first, double_review_id=third, labels=["cat"])
    with pytest.raises(NotFound):
        agreement.adjudicate(team.admin, double_review_id=third + 1000, labels=["cat"])
    with pytest.raises(ValidationFailed):
        agreement.adjudicate(team.admin, double_review_id=third, labels=["  "])
    out = agreement.adjudicate(team.admin, double_review_id=third, labels=[" Dog", "cat", "cat"])
    assert (out.before, out.labels) == (("dog", "kitten"), ("cat", "dog"))
    assert _state(photos[2]) == (tags_before, [("cat", "adjudication"), ("dog", "adjudication")])
    entry = list_entries(team.admin, action="review.adjudicate")[0]
    assert entry.before == {"status": "reviewed", "ground_truth": ["dog", "kitten"]}
    assert entry.after == {"status": "adjudicated", "ground_truth": ["cat", "dog"]}
    report = agreement.agreement_report(team.admin, now=NOW + timedelta(hours=3))
    assert (report.reviewed, report.adjudicated) == (2, 1)
    scores = {r.email: (r.matching_answers, r.adjudicated_answers) for r in report.reviewers}
    # P3's items cat, kitten, dog against {cat, dog}: Rita (reject, keep, keep) 1 of 3; Rob (keep, -, keep) 3 of 3.
    assert scores == {team.first.email: (1, 3), team.second.email: (3, 3)}
    # A photo still waiting for its second review has nothing to settle.
    waiting = h.add_photo(team.org, [("owl", 0.5, "needs_review")], minute=30)
    _first_review(team, waiting, {"owl": "approve"}, minute=200)
    with service_session() as s:
        waiting_id = s.execute(select(DoubleReview.id).where(DoubleReview.photo_id == waiting)).scalar_one()
    with pytest.raises(ConflictError, match="no second review yet"):
        agreement.adjudicate(team.admin, double_review_id=waiting_id, labels=["owl"])
