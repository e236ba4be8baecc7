"""The decision and tag rollups (migration 0018) against the raw rows they summarise, on SQLite and PostgreSQL:
a seeded random review history in a time zone off the hour (Asia/Kolkata, UTC+05:30: every local midnight falls
inside a UTC hour) and one on it, then again after reviews are undone (their decisions deleted with them),
tags un-reviewed and photos deleted. Every sum quality/decision_rollup.py returns equals the same sum computed
here in Python from the raw rows."""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from unit_helpers import load_unit_module

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    AiProcessingResult,
    Organization,
    Photo,
    PhotoTag,
    QualityDecisionDaily,
    Review,
    ReviewDecision,
)
from aiconsole.platform.settings import Settings
from aiconsole.quality import decision_rollup as dr
from aiconsole.quality.review_sql import read_session, scope

rqh = load_unit_module("test_review_queue")
NOW = datetime(2026, 3, 4, 15, 37, 12, tzinfo=UTC)
LABELS = ("cat", "dog", "sky", "tree")
ORDERS = ("random", "lowest_confidence", "oldest")
ACTIONS = ("approve", "approve", "rename", "reject")
_serial = itertools.count()


def fine_bin(confidence: float) -> int:
    """The highest k in 0..99 with confidence >= k/100: the comparisons the SQL makes."""
    return max((k for k in range(1, 100) if confidence >= k / 100), default=0)


def seed(org: int, reviewer_id: int, rng: random.Random, photos: int = 60) -> dict[int, str]:
    """Photos over the last four days with three AI tags each; about two in three reviewed at a random later
    moment (renames relabel the tag, as a review does), some with an added tag. Returns each tag's AI label."""
    made_as: dict[int, str] = {}
    with service_session() as s:
        for _ in range(photos):
            made = NOW - timedelta(minutes=rng.randrange(0, 4 * 24 * 60))
            digest = hashlib.sha256(f"dr/{org}/{next(_serial)}".encode()).hexdigest()
            photo = Photo(organization_id=org, sha256=digest, storage_uri=f"mem://{digest[:12]}", filename="p.jpg",
                          content_type="image/jpeg", byte_size=1, width=1, height=1, source="api", status="completed",
                          created_at=made, updated_at=made, completed_at=made)
            s.add(photo)
            s.flush()
            provider, model = rng.choice((("local", "local-analyzer-v1"), ("gemini", "gemini-2.5-flash")))
            result = AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider=provider, model=model,
                                        status="completed", tags=[], tag_count=3, created_at=made)
            s.add(result)
            s.flush()
            # Confidences on and off the k/100 edges (0.58 and 0.29 are where floor(x * 100) goes wrong).
            tags = [PhotoTag(organization_id=org, photo_id=photo.id, result_id=result.id, label=rng.choice(LABELS),
                             confidence=rng.choice((0.58, 0.29, 0.7, 1.0, round(rng.random(), 3))), source="ai",
                             review_state=rng.choice(("needs_review", "accepted")), created_at=made)
                    for _ in range(3)]
            s.add_all(tags)
            s.flush()
            made_as.update({t.id: t.label for t in tags})
            if rng.random() < 0.35:
                continue
            at = min(NOW - timedelta(seconds=1), made + timedelta(minutes=rng.randrange(1, 36 * 60)))
            review = Review(organization_id=org, photo_id=photo.id, reviewer_id=reviewer_id,
                            claim_token=f"t{next(_serial)}", queue_order=rng.choice(ORDERS),
                            claimed_at=at - timedelta(minutes=1), submitted_at=at)
            s.add(review)
            s.flush()
            for tag in tags:
                action = rng.choice(ACTIONS)
                after = f"{tag.label}-x" if action == "rename" else tag.label
                s.add(ReviewDecision(organization_id=org, review_id=review.id, photo_id=photo.id, tag_id=tag.id,
                                     action=action, reason="wrong" if action == "reject" else None,
                                     label_before=tag.label, label_after=None if action == "reject" else after,
                                     confidence=tag.confidence,
                                     ai_verdict="accepted" if tag.review_state == "accepted" else "needs_review",
                                     ai_provider=provider, model=model, reviewer_id=reviewer_id, created_at=at))
                tag.label, tag.reviewed_at = after, at
                tag.review_state = {"approve": "accepted", "rename": "corrected", "reject": "rejected"}[action]
            if rng.random() < 0.3:
                s.add(ReviewDecision(organization_id=org, review_id=review.id, photo_id=photo.id, action="add",
                                     label_after="grass", reviewer_id=reviewer_id, created_at=at))
            s.flush()
    return made_as


def raw(org: int, made_as: dict[int, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every decision (with its review's order) and every AI tag (with the AI's label) of the organization."""
    with service_session() as s:
        decisions = [dict(r._mapping) for r in s.execute(
            select(ReviewDecision, Review.queue_order).join(Review, Review.id == ReviewDecision.review_id)
            .where(ReviewDecision.organization_id == org))]
        tags = [{"created_at": t.created_at, "ai_label": made_as[t.id], "reviewed": t.reviewed_at is not None,
                 "awaiting": t.reviewed_at is None and t.review_state == "needs_review"}
                for t in s.scalars(select(PhotoTag).where(PhotoTag.organization_id == org, PhotoTag.source == "ai"))]
    return decisions, tags


Expected = tuple[dict[Any, tuple[int, float, int, int]], Counter[Any], dict[str, list[int]]]


def expected(org: int, sc: Any, made_as: dict[int, str]) -> Expected:
    decisions, tags = raw(org, made_as)
    sums: dict[Any, list[Any]] = defaultdict(lambda: [0, 0.0, 0, 0])
    windows: Counter[Any] = Counter()
    for row in decisions:
        d, order = row["ReviewDecision"], row["queue_order"]
        if not sc.since <= d.created_at < sc.now:
            continue
        assert d.random_order == (order == "random")  # set by the trigger from the review
        judged = d.action in ("approve", "rename", "reject") and d.confidence is not None
        w = max(i for i, start in enumerate(sc.day_starts) if d.created_at >= start)
        windows[(w, d.action, order == "random", d.ai_verdict == "accepted", judged)] += 1
        if judged:
            v = sums[(d.ai_provider, d.model, d.label_before, order == "random", fine_bin(d.confidence))]
            v[0] += 1
            v[1] += d.confidence
            v[2] += d.action == "approve"
            v[3] += d.action == "rename"
    cohort: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in tags:
        if sc.since <= t["created_at"] < sc.now:
            c = cohort[t["ai_label"]]
            c[0], c[1], c[2] = c[0] + 1, c[1] + t["reviewed"], c[2] + t["awaiting"]
    return {k: tuple(v) for k, v in sums.items()}, windows, dict(cohort)  # type: ignore[misc]


def check(org: int, days: int, made_as: dict[int, str]) -> None:
    with read_session(org) as s:
        sc = scope(s, organization_id=org, days=days, now=NOW)
        sums = dr.decision_sums(s, sc, group=list(dr.GROUPS))
        cells = dr.decisions_per_window(s, sc, sc.day_starts)
        cohort = dr.tag_cohort(s, sc)
        random_only = dr.decision_sums(s, sc, group=["label"], sample="random")
    want_sums, want_windows, want_cohort = expected(org, sc, made_as)
    got = {k: (v.n, v.conf_sum, v.approved, v.renamed) for k, v in sums.items() if v.n}
    assert {k: v[:1] + v[2:] for k, v in got.items()} == {k: v[:1] + v[2:] for k, v in want_sums.items()}
    for k, v in want_sums.items():
        assert got[k][1] == pytest.approx(v[1])
    assert {(c.window, c.action, c.random_order, c.ai_accepted, c.judged): c.n for c in cells if c.n} == dict(
        want_windows)
    assert {k: [v.tags, v.reviewed, v.awaiting] for k, v in cohort.items() if v.tags} == want_cohort
    by_label: Counter[str] = Counter()
    for (_, _, label, rnd, _), v in want_sums.items():
        by_label[label] += v[0] if rnd else 0
    assert {k[0]: v.n for k, v in random_only.items() if v.n} == {k: n for k, n in by_label.items() if n}


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "UTC"])
def test_rollups_equal_the_raw_rows_through_reviews_undos_and_deletes(any_settings: Settings, tz: str) -> None:
    team = rqh.make_team(f"Rollup {tz}")
    with service_session() as s:
        s.execute(update(Organization).where(Organization.id == team.org).values(timezone=tz))
    rng = random.Random(20261204)
    made_as = seed(team.org, team.first.user_id, rng)
    with service_session() as s:
        assert s.scalar(select(QualityDecisionDaily.n).where(QualityDecisionDaily.organization_id == team.org)
                        .limit(1))  # the triggers wrote the rollup
    for days in (1, 3, 5):
        check(team.org, days, made_as)
    with service_session() as s:
        reviews = list(s.scalars(select(Review.id).where(Review.organization_id == team.org).order_by(Review.id)))
        s.execute(delete(Review).where(Review.id.in_(reviews[::4])))  # undone: decisions go with the review
        tags = list(s.scalars(select(PhotoTag.id).where(PhotoTag.organization_id == team.org,
                                                        PhotoTag.reviewed_at.is_not(None)).order_by(PhotoTag.id)))
        s.execute(update(PhotoTag).where(PhotoTag.id.in_(tags[::3]))
                  .values(reviewed_at=None, review_state="needs_review"))
        photos = list(s.scalars(select(Photo.id).where(Photo.organization_id == team.org).order_by(Photo.id)))
        s.execute(delete(Photo).where(Photo.id.in_(photos[::5])))
    for days in (1, 3, 5):
        check(team.org, days, made_as)


def test_split_hours_reads_straddled_hours_raw() -> None:
    since = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)  # local midnight in Kolkata
    starts = [since, since + timedelta(days=1)]
    got = dr.split_hours(since, NOW, starts)
    assert got.first == datetime(2026, 3, 1, 19, tzinfo=UTC) and got.end == datetime(2026, 3, 4, 15, tzinfo=UTC)
    assert got.straddled == frozenset({datetime(2026, 3, 2, 18, tzinfo=UTC)})
    assert got.raw == ((since, got.first), (got.end, NOW),
                       (datetime(2026, 3, 2, 18, tzinfo=UTC), datetime(2026, 3, 2, 19, tzinfo=UTC)))
    whole = dr.split_hours(datetime(2026, 3, 1, 19, tzinfo=UTC), datetime(2026, 3, 1, 21, tzinfo=UTC))
    assert whole.raw == () and whole.straddled == frozenset()
