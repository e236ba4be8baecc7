"""Quality analytics: how right the AI's tags are by reviewers' decisions, and how the review work goes.

Every figure is aggregated in SQL over a window of the organization's local calendar days (today included):
precision per day, confidence histograms of approved / renamed / rejected tags, per-label performance, the
most common renames, reviews per day, hour and reviewer, and the backlog now.

Right and wrong are `review_sql`'s (approved or renamed vs rejected). Precision from random-order reviews is
the unbiased estimate (that order samples every processed photo); the figure over all reviews is labelled
biased: the other orders favour the uncertain tags the rules send to review.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, distinct, func, select
from sqlalchemy.orm import Session

from aiconsole.platform import cache
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import CorrectionBatch, PipelineConfig, User
from aiconsole.platform.db.sql import hour_floor
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import decision_rollup, review_queue
from aiconsole.quality.review_sql import (
    CORRECT_ACTIONS,
    DECISIONS,
    DEFAULT_DAYS,
    JUDGED_ACTIONS,
    NO_RANDOM_REVIEWS,
    REVIEWS,
    SAMPLE_NOTES,
    SAMPLES,
    Scope,
    bin_sql,
    judged,
    read_session,
    scope,
    window_index,
)
from aiconsole.quality.stats import Interval, wilson_interval

USERS = cast(Table, User.__table__)
BATCHES = cast(Table, CorrectionBatch.__table__)
CONFIGS = cast(Table, PipelineConfig.__table__)
HISTOGRAM_BINS = 20
HOURS = 24
VIEW_TTL_S = 60.0
VIEW_CACHE_PREFIX = "quality_view"
T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ precision


@dataclass(frozen=True)
class PrecisionPoint:
    """One local day's precision from one sample: `correct` of `decided` AI tags (interval None for none)."""

    day: date
    sample: str
    decided: int
    correct: int
    interval: Interval | None


@dataclass(frozen=True)
class PrecisionSummary:
    """The window's precision from one sample, over all decided AI tags or only those the rules accepted."""

    sample: str
    tags: str  # "all" | "accepted"
    decided: int
    correct: int
    interval: Interval | None
    biased: bool
    note: str


@dataclass(frozen=True)
class Precision:
    points: tuple[PrecisionPoint, ...]
    summaries: tuple[PrecisionSummary, ...]


def _precision(s: Session, sc: Scope) -> Precision:
    cells = [(c.window, c.random_order, c.ai_accepted, c.n, c.n if c.action in CORRECT_ACTIONS else 0)
             for c in decision_rollup.decisions_per_window(s, sc, sc.day_starts) if c.judged]

    def tally(sample: str, *, day: int | None = None, tags: str = "all") -> tuple[int, int]:
        picked = [(n, ok) for i, rnd, acc, n, ok in cells
                  if (day is None or i == day) and (rnd or sample == "all") and (acc or tags == "all")]
        return sum(n for n, _ in picked), sum(ok for _, ok in picked)

    points = []
    for i, day in enumerate(sc.days):
        for sample in SAMPLES:
            n, ok = tally(sample, day=i)
            points.append(PrecisionPoint(day, sample, n, ok, wilson_interval(ok, n)))
    summaries = []
    for sample in SAMPLES:
        for tags in ("all", "accepted"):
            n, ok = tally(sample, tags=tags)
            summaries.append(PrecisionSummary(sample, tags, n, ok, wilson_interval(ok, n), biased=sample != "random",
                                              note=SAMPLE_NOTES[sample] if n or sample == "all" else NO_RANDOM_REVIEWS))
    return Precision(tuple(points), tuple(summaries))


# ------------------------------------------------------------------------------- confidence distribution


@dataclass(frozen=True)
class ConfidenceHistogram:
    """Decided AI tags per equal confidence bin (bin i: i/n <= confidence < (i+1)/n), by decision."""

    bins: int
    sample: str
    approved: tuple[int, ...]
    renamed: tuple[int, ...]
    rejected: tuple[int, ...]


def _histogram(s: Session, sc: Scope, *, bins: int, sample: str) -> ConfidenceHistogram:
    if not 2 <= bins <= 100:
        raise ValidationFailed(f"{bins} histogram bins is not a usable histogram.", hint="Use 2 to 100 bins.")
    counts = {a: [0] * bins for a in JUDGED_ACTIONS}
    if decision_rollup.FINE_BINS % bins == 0:
        # Bin i's edge i/bins is the fine edge (i * m)/100 (one rational, one float): fine bin k is in k // m.
        m = decision_rollup.FINE_BINS // bins
        for (k,), v in decision_rollup.decision_sums(s, sc, group=["conf_bin"], sample=sample).items():
            for action, n in (("approve", v.approved), ("rename", v.renamed), ("reject", v.rejected)):
                counts[action][k // m] += n
    else:
        d = DECISIONS.c
        inner = (select(bin_sql(d.confidence, bins).label("bin"), d.action)
                 .where(*judged(sc, sample)).subquery())
        for b, action, n in s.execute(select(inner.c.bin, inner.c.action, func.count())
                                      .group_by(inner.c.bin, inner.c.action)):
            counts[action][int(b)] = int(n)
    return ConfidenceHistogram(bins, sample, tuple(counts["approve"]), tuple(counts["rename"]),
                               tuple(counts["reject"]))


# ------------------------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class LabelPerformance:
    """One AI label: its reviewers' decisions in the window (precision from all reviews and from the random
    sample alone, correction rate = renamed / decided), and the AI tags it was given in the window: how many,
    how many are reviewed since and how many await review (review rate = reviewed or awaiting / all)."""

    label: str
    decided: int
    approved: int
    renamed: int
    rejected: int
    precision: Interval | None
    random_decided: int
    random_precision: Interval | None
    correction_rate: float | None
    tags: int
    awaiting_review: int
    reviewed: int
    review_rate: float | None


def _labels(s: Session, sc: Scope, *, limit: int) -> list[LabelPerformance]:
    decided: dict[str, list[decision_rollup.DecisionSums]] = defaultdict(
        lambda: [decision_rollup.DecisionSums(), decision_rollup.DecisionSums()])
    for (label, rnd), v in decision_rollup.decision_sums(s, sc, group=["label", "random_order"]).items():
        decided[label][int(rnd)] = v
    cohort = decision_rollup.tag_cohort(s, sc)
    out = []
    for label in set(decided) | set(cohort):
        other, rnd = decided.get(label, (decision_rollup.DecisionSums(), decision_rollup.DecisionSums()))
        n, approved, renamed = other.n + rnd.n, other.approved + rnd.approved, other.renamed + rnd.renamed
        c = cohort.get(label, decision_rollup.TagCohort())
        out.append(LabelPerformance(
            label=label, decided=n, approved=approved, renamed=renamed, rejected=n - approved - renamed,
            precision=wilson_interval(approved + renamed, n), random_decided=rnd.n,
            random_precision=wilson_interval(rnd.correct, rnd.n), correction_rate=renamed / n if n else None,
            tags=c.tags, awaiting_review=c.awaiting, reviewed=c.reviewed,
            review_rate=(c.awaiting + c.reviewed) / c.tags if c.tags else None))
    out.sort(key=lambda p: (-p.decided, -p.tags, p.label))
    return out[:limit]


@dataclass(frozen=True)
class Correction:
    """A rename reviewers made: `count` tags labelled `before` by the AI became `after`."""

    before: str
    after: str
    count: int


def _corrections(s: Session, sc: Scope, *, limit: int) -> list[Correction]:
    d = DECISIONS.c
    n = func.count().label("n")
    rows = s.execute(select(d.label_before, d.label_after, n)
                     .where(*judged(sc, "all"), d.action == "rename")
                     .group_by(d.label_before, d.label_after).order_by(n.desc(), d.label_before, d.label_after)
                     .limit(limit))
    return [Correction(before, after, int(count)) for before, after, count in rows]


# ----------------------------------------------------------------------------------------------- throughput


@dataclass(frozen=True)
class ReviewerThroughput:
    """One reviewer's reviews in the window; `per_hour` is reviews per hour they reviewed in (hours with one)."""

    reviewer_id: int | None
    email: str | None
    reviews: int
    decisions: int
    active_hours: int
    per_hour: float | None


@dataclass(frozen=True)
class Throughput:
    """Reviews (and tag decisions) per local day, reviews per local hour of the last 24, per reviewer."""

    days: tuple[tuple[date, int, int], ...]
    hours: tuple[tuple[datetime, int], ...]
    reviewers: tuple[ReviewerThroughput, ...]


def _throughput(s: Session, sc: Scope) -> Throughput:
    r, d, org = REVIEWS.c, DECISIONS.c, sc.organization_id
    in_window = [r.organization_id == org, r.submitted_at >= sc.since, r.submitted_at < sc.now]

    decided = [d.organization_id == org, d.created_at >= sc.since, d.created_at < sc.now]

    def per_window(column: Any, starts: Sequence[datetime], where: list[Any]) -> list[int]:
        inner = select(window_index(column, starts).label("w")).where(*where, column >= starts[0]).subquery()
        counts = [0] * len(starts)
        for w, n in s.execute(select(inner.c.w, func.count()).group_by(inner.c.w)):
            counts[int(w)] = int(n)
        return counts

    last = sc.now.astimezone(ZoneInfo(sc.tz)).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    hour_starts = [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    per_decider: dict[int | None, int] = {who: int(n) for who, n in s.execute(
        select(d.reviewer_id, func.count()).where(*decided).group_by(d.reviewer_id))}
    active = func.count(distinct(hour_floor(r.submitted_at)))
    rows = s.execute(select(r.reviewer_id, USERS.c.email, func.count(), active)
                     .select_from(REVIEWS.outerjoin(USERS, USERS.c.id == r.reviewer_id)).where(*in_window)
                     .group_by(r.reviewer_id, USERS.c.email)).all()
    reviewers = sorted((ReviewerThroughput(who, email, int(n), per_decider.get(who, 0), int(hours),
                                           n / hours if hours else None) for who, email, n, hours in rows),
                       key=lambda x: (-x.reviews, x.email or ""))
    decisions_a_day = [0] * len(sc.day_starts)
    for c in decision_rollup.decisions_per_window(s, sc, sc.day_starts):
        decisions_a_day[c.window] += c.n
    days = zip(sc.days, per_window(r.submitted_at, sc.day_starts, in_window), decisions_a_day, strict=True)
    hours = zip(hour_starts, per_window(r.submitted_at, hour_starts, [*in_window[:1], r.submitted_at < sc.now]),
                strict=True)
    return Throughput(days=tuple(days), hours=tuple(hours), reviewers=tuple(reviewers))


@dataclass(frozen=True)
class Backlog:
    """Photos awaiting review now (the rules' band or needs_review) and how long they take at the last 24 hours'
    pace (None when nobody reviewed). The random order's pool is not counted: it costs as much again."""

    awaiting: int
    reviews_last_24h: int
    eta_hours: float | None


def backlog(actor: Actor, *, now: datetime | None = None, settings: Settings | None = None) -> Backlog:
    """The review backlog now (quality.view)."""
    actor.require("quality.view")
    awaiting = review_queue.queue_size(actor, order="lowest_confidence", settings=settings)
    with read_session(actor.organization_id, settings=settings) as s:
        sc = scope(s, organization_id=actor.organization_id, days=1, now=now)
        done = int(s.scalar(select(func.count()).select_from(REVIEWS).where(
            REVIEWS.c.organization_id == sc.organization_id, REVIEWS.c.submitted_at >= sc.now - timedelta(hours=HOURS),
            REVIEWS.c.submitted_at < sc.now)) or 0)
    return Backlog(awaiting, done, awaiting / (done / HOURS) if done else None)


# ---------------------------------------------------------------------------------------------- public API


def _read(actor: Actor, days: int, now: datetime | None, settings: Settings | None,
          part: Callable[[Session, Scope], T]) -> T:
    actor.require("quality.view")
    with read_session(actor.organization_id, settings=settings) as s:
        return part(s, scope(s, organization_id=actor.organization_id, days=days, now=now))


def precision(actor: Actor, *, days: int = DEFAULT_DAYS, now: datetime | None = None,
              settings: Settings | None = None) -> Precision:
    """Precision per local day and over the window, random-sample (unbiased) and all reviews (biased)."""
    return _read(actor, days, now, settings, _precision)


def confidence_histogram(actor: Actor, *, days: int = DEFAULT_DAYS, bins: int = HISTOGRAM_BINS, sample: str = "all",
                         now: datetime | None = None, settings: Settings | None = None) -> ConfidenceHistogram:
    """Approved, renamed and rejected AI tags per confidence bin."""
    return _read(actor, days, now, settings, lambda s, sc: _histogram(s, sc, bins=bins, sample=sample))


def label_performance(actor: Actor, *, days: int = DEFAULT_DAYS, limit: int = 50, now: datetime | None = None,
                      settings: Settings | None = None) -> list[LabelPerformance]:
    """Per AI label: precision, correction rate and review rate; the most decided labels first."""
    return _read(actor, days, now, settings, lambda s, sc: _labels(s, sc, limit=limit))


def top_corrections(actor: Actor, *, days: int = DEFAULT_DAYS, limit: int = 20, now: datetime | None = None,
                    settings: Settings | None = None) -> list[Correction]:
    """The most common renames (AI label -> reviewer's label), most frequent first."""
    return _read(actor, days, now, settings, lambda s, sc: _corrections(s, sc, limit=limit))


def throughput(actor: Actor, *, days: int = DEFAULT_DAYS, now: datetime | None = None,
               settings: Settings | None = None) -> Throughput:
    """Reviews per local day and hour, and per reviewer."""
    return _read(actor, days, now, settings, _throughput)


@dataclass(frozen=True)
class QualityAnalytics:
    """Every analytics figure of one window, read in one transaction (plus the backlog's queue counts)."""

    days: int
    since: datetime
    until: datetime
    timezone: str
    precision: Precision
    histogram: ConfidenceHistogram
    labels: tuple[LabelPerformance, ...]
    corrections: tuple[Correction, ...]
    throughput: Throughput
    backlog: Backlog


def analytics(actor: Actor, *, days: int = DEFAULT_DAYS, now: datetime | None = None,
              settings: Settings | None = None) -> QualityAnalytics:
    """The whole analytics view (quality.view)."""
    def every(s: Session, sc: Scope) -> QualityAnalytics:
        return QualityAnalytics(days, sc.since, sc.now, sc.tz, _precision(s, sc),
                                _histogram(s, sc, bins=HISTOGRAM_BINS, sample="all"),
                                tuple(_labels(s, sc, limit=50)), tuple(_corrections(s, sc, limit=20)),
                                _throughput(s, sc), Backlog(0, 0, None))

    return replace(_read(actor, days, now, settings, every), backlog=backlog(actor, now=now, settings=settings))


# -------------------------------------------------------------------------------------------- the tab's cache


def _fingerprint(org: int, settings: Settings | None) -> tuple[Any, ...]:
    """What changes when a review is submitted, undone or second-reviewed, a batch runs or is undone, or the
    rules change (a proposal): a cached view under another fingerprint is never served. New photos from the
    workers show up within VIEW_TTL_S."""
    r, b = REVIEWS.c, BATCHES.c
    with read_session(org, settings=settings) as s:
        reviews = s.execute(select(func.max(r.id), func.count()).where(r.organization_id == org)).one()
        batches = s.execute(select(func.max(b.id), func.sum(b.processed), func.sum(b.restored))
                            .where(b.organization_id == org)).one()
        rules = s.scalar(select(CONFIGS.c.version).where(CONFIGS.c.organization_id == org))
    return (*reviews, *batches, rules)


def cached_view(actor: Actor, part: str, args: tuple[Any, ...], compute: Callable[[], T], *,
                settings: Settings | None = None) -> T:
    """`compute()` for the Analytics tab from the read cache (quality.view): for VIEW_TTL_S, and only while
    the organization's reviews, batches and rules are as they were."""
    actor.require("quality.view")
    org = actor.organization_id
    key = (VIEW_CACHE_PREFIX, org, part, *args, *_fingerprint(org, settings))
    return cache.cached(key, VIEW_TTL_S, compute, settings=settings)


def cached_analytics(actor: Actor, *, days: int = DEFAULT_DAYS, settings: Settings | None = None) -> QualityAnalytics:
    """`analytics` through the tab's cache."""
    return cached_view(actor, "analytics", (days,), lambda: analytics(actor, days=days, settings=settings),
                       settings=settings)
