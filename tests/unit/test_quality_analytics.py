"""Quality analytics on SQLite and PostgreSQL against a small review history whose answers are worked out by
hand below: precision per local day (America/New_York) from the random sample and from all reviews, the
confidence histograms, per-label performance (a renamed tag still counts for the AI's label), the most common
renames, throughput per day, hour and reviewer, the backlog; one review through submit_review; the charts."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from unit_helpers import load_unit_module

from aiconsole.charts import base
from aiconsole.charts import quality as charts
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    AiProcessingResult,
    Organization,
    Photo,
    PhotoTag,
    Review,
    ReviewDecision,
)
from aiconsole.platform.errors import PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import analytics as qa
from aiconsole.quality import review_queue as rq
from aiconsole.quality.decisions import TagDecision, submit_review
from aiconsole.quality.stats import wilson_interval

rqh = load_unit_module("test_review_queue")
TZ = "America/New_York"  # EST (UTC-5) all window long: the clocks change on 8 March 2026
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # 10:00 EST; a 3-day window is 2, 3 and 4 March (EST)
CREATED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_serial = itertools.count()

# (order, reviewer, submitted, [(label, confidence, verdict, action, renamed to)], added labels)
REVIEWS: list[tuple[str, str, datetime, list[tuple[str, float, str, str, str | None]], tuple[str, ...]]] = [
    ("random", "first", datetime(2026, 3, 3, 4, 0, tzinfo=UTC),  # 23:00 EST on 2 March
     [("cat", 0.9, "accepted", "approve", None), ("dog", 0.7, "needs_review", "reject", None),
      ("sky", 0.95, "accepted", "approve", None)], ()),
    ("random", "first", datetime(2026, 3, 3, 5, 10, tzinfo=UTC),  # 00:10 EST on 3 March
     [("cat", 0.85, "accepted", "rename", "kitten"), ("tree", 0.3, "rejected", "reject", None)], ()),
    ("random", "first", datetime(2026, 3, 3, 5, 40, tzinfo=UTC), [("sky", 0.92, "accepted", "approve", None)], ()),
    ("lowest_confidence", "second", datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
     [("cat", 0.6, "needs_review", "reject", None), ("dog", 0.65, "needs_review", "approve", None),
      ("dog", 0.55, "needs_review", "rename", "wolf")], ("grass",)),
    ("lowest_confidence", "second", datetime(2026, 3, 4, 14, 30, tzinfo=UTC),
     [("cat", 0.62, "needs_review", "rename", "kitten"), ("tree", 0.5, "needs_review", "reject", None)], ()),
    # Before the window (1 March, EST): counted nowhere.
    ("random", "first", datetime(2026, 3, 1, 12, 0, tzinfo=UTC), [("cat", 0.9, "accepted", "reject", None)], ()),
]
STATE = {"approve": "accepted", "reject": "rejected", "rename": "corrected"}


def photo_with_result(s: Any, org: int, *, created: datetime, status: str = "completed", provider: str = "local",
                      model: str = "local-analyzer-v1") -> tuple[int, int]:
    """A processed photo and its result row: (photo id, result id)."""
    digest = hashlib.sha256(f"qa/{org}/{next(_serial)}".encode()).hexdigest()
    photo = Photo(organization_id=org, sha256=digest, storage_uri=f"mem://{digest[:12]}", filename="p.jpg",
                  content_type="image/jpeg", byte_size=1000, width=640, height=480, source="api", status=status,
                  created_at=created, updated_at=created, completed_at=created)
    s.add(photo)
    s.flush()
    result = AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider=provider, model=model,
                                status="completed", tags=[], tag_count=0, created_at=created)
    s.add(result)
    s.flush()
    return photo.id, result.id


def add_review(org: int, reviewer: Actor, *, order: str, at: datetime,
               decisions: list[tuple[str, float, str, str, str | None]], added: tuple[str, ...] = (),
               created: datetime = CREATED, provider: str = "local", model: str = "local-analyzer-v1") -> int:
    """A reviewed photo as decisions.submit_review leaves it: tags in their reviewed state (renamed ones
    relabelled), the review and one decision per tag (label, confidence, verdict, provider, model as decided)."""
    with service_session() as s:
        photo_id, result_id = photo_with_result(s, org, created=created, provider=provider, model=model)
        review = Review(organization_id=org, photo_id=photo_id, reviewer_id=reviewer.user_id,
                        claim_token=f"tok-{next(_serial)}", queue_order=order, claimed_at=at - timedelta(minutes=1),
                        submitted_at=at)
        s.add(review)
        s.flush()
        for label, conf, verdict, action, renamed in decisions:
            # Made by the AI with its label, then relabelled by the review (the tag rollups keep the AI's label).
            tag = PhotoTag(organization_id=org, photo_id=photo_id, result_id=result_id, label=label,
                           confidence=conf, source="ai", review_state=STATE[action], reviewed_by=reviewer.user_id,
                           reviewed_at=at, created_at=created)
            s.add(tag)
            s.flush()
            if renamed:
                tag.label = renamed
                s.flush()
            s.add(ReviewDecision(organization_id=org, review_id=review.id, photo_id=photo_id, tag_id=tag.id,
                                 action=action, reason="wrong" if action == "reject" else None, label_before=label,
                                 label_after=None if action == "reject" else renamed or label, confidence=conf,
                                 ai_verdict=verdict, ai_provider=provider, model=model, reviewer_id=reviewer.user_id,
                                 created_at=at))
        for label in added:
            tag = PhotoTag(organization_id=org, photo_id=photo_id, label=label, confidence=1.0, source="human",
                           review_state="accepted", reviewed_by=reviewer.user_id, reviewed_at=at, created_at=at)
            s.add(tag)
            s.flush()
            s.add(ReviewDecision(organization_id=org, review_id=review.id, photo_id=photo_id, tag_id=tag.id,
                                 action="add", label_after=label, reviewer_id=reviewer.user_id, created_at=at))
        return photo_id


def in_zone(org: int, tz: str = TZ) -> None:
    with service_session() as s:
        s.execute(update(Organization).where(Organization.id == org).values(timezone=tz))


@pytest.fixture
def team(any_settings: Settings) -> Any:
    team = rqh.make_team("Analytics Org")
    in_zone(team.org)
    people = {"first": team.first, "second": team.second}
    for order, who, at, decisions, added in REVIEWS:
        add_review(team.org, people[who], order=order, at=at, decisions=decisions, added=added,
                   created=min(CREATED, at - timedelta(hours=1)))
    # Awaiting review: a cat tag in the band (a cat tag the rules accepted waits only in the random order).
    rqh.add_photo(team.org, [("cat", 0.7, "needs_review")], key="awaiting")
    rqh.add_photo(team.org, [("cat", 0.97, "accepted")], status="completed", key="accepted")
    return team


def test_precision_per_local_day_random_sample_and_all_reviews(team: Any) -> None:
    got = qa.precision(team.viewer, days=3, now=NOW)
    days = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)]
    by = {(p.day, p.sample): (p.decided, p.correct) for p in got.points}
    # 2 March (EST) holds the review submitted at 04:00 UTC on 3 March; renames count as right.
    assert by == {(days[0], "random"): (3, 2), (days[0], "all"): (3, 2),
                  (days[1], "random"): (3, 2), (days[1], "all"): (6, 4),
                  (days[2], "random"): (0, 0), (days[2], "all"): (2, 1)}
    point = next(p for p in got.points if p.day == days[1] and p.sample == "all")
    assert point.interval == wilson_interval(4, 6)
    assert next(p for p in got.points if p.day == days[2] and p.sample == "random").interval is None
    summary = {(x.sample, x.tags): (x.decided, x.correct, x.biased) for x in got.summaries}
    assert summary == {("random", "all"): (6, 4, False), ("random", "accepted"): (4, 4, False),
                       ("all", "all"): (11, 7, True), ("all", "accepted"): (4, 4, True)}
    assert all("biased" in x.note for x in got.summaries if x.sample == "all")
    # In UTC the first review would fall on 3 March: the days are the organization's.
    in_zone(team.org, "UTC")
    utc = {(p.day, p.sample): p.decided for p in qa.precision(team.viewer, days=3, now=NOW).points}
    assert utc[(days[0], "all")] == 0 and utc[(days[1], "all")] == 9


def test_no_random_sample_says_what_to_do(team: Any) -> None:
    later = NOW + timedelta(days=10)  # the window holds no review at all
    summary = qa.precision(team.viewer, days=1, now=later).summaries
    random = next(x for x in summary if x.sample == "random" and x.tags == "all")
    assert random.decided == 0 and random.interval is None
    assert random.note == "No random-sample reviews yet: review in Random order to estimate precision."


def test_confidence_histograms_by_decision_with_edges_in_the_upper_bin(team: Any) -> None:
    h = qa.confidence_histogram(team.viewer, days=3, bins=10, now=NOW)
    assert h.approved == (0, 0, 0, 0, 0, 0, 1, 0, 0, 3)  # 0.65; 0.9, 0.92, 0.95
    assert h.renamed == (0, 0, 0, 0, 0, 1, 1, 0, 1, 0)  # 0.55, 0.62, 0.85
    assert h.rejected == (0, 0, 0, 1, 0, 1, 1, 1, 0, 0)  # 0.3, 0.5, 0.6, 0.7: each on its bin's lower edge
    random = qa.confidence_histogram(team.viewer, days=3, bins=10, sample="random", now=NOW)
    assert sum(random.approved) + sum(random.renamed) + sum(random.rejected) == 6
    with pytest.raises(ValidationFailed, match="no sample 'biased'"):
        qa.confidence_histogram(team.viewer, days=3, sample="biased", now=NOW)


def test_label_performance(team: Any) -> None:
    rows = {p.label: p for p in qa.label_performance(team.viewer, days=3, now=NOW)}
    assert list(rows) == ["cat", "dog", "sky", "tree"]  # by decisions, ties by tags then name; no 'kitten'
    cat, dog, tree = rows["cat"], rows["dog"], rows["tree"]
    assert (cat.decided, cat.approved, cat.renamed, cat.rejected) == (4, 1, 2, 1)
    assert cat.precision == wilson_interval(3, 4) and cat.correction_rate == 0.5
    assert (cat.random_decided, cat.random_precision) == (2, wilson_interval(2, 2))
    # Its AI tags: 4 reviewed (two now labelled 'kitten'), 1 awaiting review, 1 accepted by the rules.
    assert (cat.tags, cat.reviewed, cat.awaiting_review, cat.review_rate) == (6, 4, 1, 5 / 6)
    assert (dog.decided, dog.precision, dog.tags, dog.review_rate) == (3, wilson_interval(2, 3), 3, 1.0)
    assert dog.correction_rate == pytest.approx(1 / 3)
    assert (tree.decided, tree.precision, tree.random_decided) == (2, wilson_interval(0, 2), 1)


def test_most_common_corrections(team: Any) -> None:
    got = qa.top_corrections(team.viewer, days=3, now=NOW)
    assert [(c.before, c.after, c.count) for c in got] == [("cat", "kitten", 2), ("dog", "wolf", 1)]
    assert len(qa.top_corrections(team.viewer, days=3, limit=1, now=NOW)) == 1


def test_throughput_per_local_day_hour_and_reviewer(team: Any) -> None:
    got = qa.throughput(team.viewer, days=3, now=NOW)
    # Reviews; decisions (the added tag included) per EST day.
    assert got.days == ((date(2026, 3, 2), 1, 3), (date(2026, 3, 3), 3, 7), (date(2026, 3, 4), 1, 2))
    assert len(got.hours) == 24 and got.hours[-1][0] == NOW  # the hour 10:00 EST now is in, last
    assert [(h, n) for h, n in got.hours if n] == [(datetime(2026, 3, 4, 14, 0, tzinfo=UTC), 1)]
    first, second = got.reviewers
    assert (first.email, first.reviews, first.decisions, first.active_hours) == (team.first.email, 3, 6, 2)
    assert first.per_hour == 1.5
    assert (second.email, second.reviews, second.decisions, second.active_hours, second.per_hour) == (
        team.second.email, 2, 6, 2, 1.0)


def test_backlog_now(team: Any) -> None:
    b = qa.backlog(team.viewer, now=NOW)
    # One photo in the band; 2 reviews in 24 h: 12 h to go.
    assert (b.awaiting, b.reviews_last_24h, b.eta_hours) == (1, 2, 12.0)


def test_the_whole_view_in_one_call_and_its_permission(team: Any) -> None:
    view = qa.analytics(team.viewer, days=3, now=NOW)
    assert view.timezone == TZ and view.since == datetime(2026, 3, 2, 5, 0, tzinfo=UTC) and view.until == NOW
    assert [c.count for c in view.corrections] == [2, 1] and view.backlog.awaiting == 1
    assert view.precision == qa.precision(team.viewer, days=3, now=NOW)
    stranger = Actor(user_id=None, email="x@example.com", role="nobody", organization_id=team.org)
    with pytest.raises(PermissionDenied):
        qa.analytics(stranger, days=3, now=NOW)
    with pytest.raises(ValidationFailed, match=r"outside 1\.\.365"):
        qa.precision(team.viewer, days=0, now=NOW)


def test_other_organizations_reviews_are_not_counted(team: Any) -> None:
    other = rqh.make_team("Other Analytics Org")
    add_review(other.org, other.first, order="random", at=NOW - timedelta(hours=1),
               decisions=[("cat", 0.9, "accepted", "reject", None)])
    summary = qa.precision(team.viewer, days=3, now=NOW).summaries
    assert next(x for x in summary if x.sample == "all" and x.tags == "all").decided == 11


def test_a_review_submitted_through_the_queue_counts(any_settings: Settings) -> None:
    team = rqh.make_team("Submitted Org")
    rqh.add_photo(team.org, [("boat", 0.6, "needs_review"), ("sea", 0.5, "needs_review")], key="boat")
    item = rq.claim_next(team.first, order="random", now=NOW)
    assert item is not None
    by_label = {t.label: t.tag_id for t in item.tags}
    submit_review(team.first, token=item.token, now=NOW, decisions=[
        TagDecision(tag_id=by_label["boat"], action="rename", label="ship"),
        TagDecision(tag_id=by_label["sea"], action="reject", reason="wrong")])
    after = NOW + timedelta(minutes=1)
    summary = qa.precision(team.viewer, days=1, now=after).summaries
    assert next(x for x in summary if x.sample == "random" and x.tags == "all").decided == 2
    assert [(c.before, c.after) for c in qa.top_corrections(team.viewer, days=1, now=after)] == [("boat", "ship")]
    boat = next(p for p in qa.label_performance(team.viewer, days=30, now=after) if p.label == "boat")
    assert (boat.renamed, boat.reviewed, boat.tags) == (1, 1, 1)


# ------------------------------------------------------------------------------------------------- charts


def _points(view: qa.Precision) -> Any:
    import pandas as pd

    return pd.DataFrame([{"day": p.day, "sample": p.sample, "decided": p.decided,
                          "precision": p.interval.estimate if p.interval else None,
                          "low": p.interval.low if p.interval else None,
                          "high": p.interval.high if p.interval else None} for p in view.points])


def test_precision_chart_draws_the_interval_band_and_labels_the_samples(team: Any) -> None:
    fig = charts.precision_chart(_points(qa.precision(team.viewer, days=3, now=NOW)))
    names = [t.name for t in fig.data]
    assert any("random sample" in (n or "") for n in names) and any("biased" in (n or "") for n in names)
    band = [t for t in fig.data if t.fill == "toself"]
    assert band and band[0].showlegend is not False
    empty = charts.precision_chart(_points(qa.precision(team.viewer, days=1, now=NOW + timedelta(days=10))))
    assert base.is_empty_figure(empty)


def test_confidence_reliability_and_corrections_charts(team: Any) -> None:
    h = qa.confidence_histogram(team.viewer, days=3, bins=10, now=NOW)
    fig = charts.confidence_chart(h.approved, h.renamed, h.rejected)
    assert [t.name for t in fig.data] == ["approved", "renamed", "rejected"]
    assert list(fig.data[0].y) == list(h.approved)
    assert base.is_empty_figure(charts.confidence_chart((0,) * 10, (0,) * 10, (0,) * 10))
    corr = charts.corrections_chart([("cat", "kitten", 2), ("dog", "wolf", 1)])
    assert list(corr.data[0].x) == [2, 1] or list(corr.data[0].x)[::-1] == [2, 1]
    assert base.is_empty_figure(charts.corrections_chart([]))
    rel = charts.reliability_chart({"local": [(0.55, 0.5, 10), (0.95, 0.9, 20)]})
    diagonal = [t for t in rel.data if t.name == "perfectly calibrated"]
    assert diagonal and list(diagonal[0].x) == [0, 1] and list(diagonal[0].y) == [0, 1]


@pytest.mark.parametrize("vision", ["normal vision", "protanopia", "deuteranopia", "tritanopia"])
def test_outcome_colours_stay_apart_for_colour_blind_readers(vision: str) -> None:
    cc = load_unit_module("test_charts")
    distance, a, b = cc._closest(dict(charts.OUTCOME_COLORS), vision)
    assert distance >= cc.MIN_DISTANCE[vision], f"{a} and {b} look alike with {vision} ({distance:.1f})"
