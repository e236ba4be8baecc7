"""What the review screen reads besides the queue: the photo itself, the organization's labels (to add or
rename a tag to), the filters' choices, a reviewer's pace this session, and what a submitted review decided.

Labels come from the newest ground truth and the newest tags (each read bounded by `LABEL_SAMPLE_ROWS`,
counted in SQL) and are cached for `LABELS_TTL_S`: autocomplete needs the labels in use, not an exact census
of a table that grows with every photo.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select

from aiconsole.pipeline.images import load_image_bytes, thumbnail
from aiconsole.pipeline.rules import normalize_label
from aiconsole.platform import cache
from aiconsole.platform.actor import Actor
from aiconsole.platform.clock import org_clock
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import GroundTruth, Photo, PhotoTag, Prompt, PromptVersion, Review, ReviewDecision
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.providers.registry import PROVIDER_MODELS, PROVIDER_NAMES, capabilities
from aiconsole.quality.review_queue import QueueFilters

TAGS = cast(Table, PhotoTag.__table__)
TRUTH = cast(Table, GroundTruth.__table__)
SCREEN_SIDE = 960  # the photo as the review screen shows it; zoom shows it at full resolution
MAX_SIDE = 4096  # the largest side a JPEG is drawn at (thumbnail's limit)
LABEL_SAMPLE_ROWS = 20_000
LABELS_TTL_S = 300.0
LABELS_CACHE_PREFIX = "review_labels"


@dataclass(frozen=True)
class PhotoImage:
    """A photo as a JPEG for the screen: `side` is the longest side drawn, `full` whether that is every pixel."""

    photo_id: int
    jpeg: bytes
    side: int
    full: bool


@dataclass(frozen=True)
class FilterChoices:
    """What the queue's filters offer: providers (name, display name), their models, prompt versions
    (id, "name vN"), and the organization's labels, most used first."""

    providers: tuple[tuple[str, str], ...]
    models: dict[str, tuple[str, ...]]
    prompt_versions: tuple[tuple[int, str], ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ReviewPace:
    """A reviewer's reviews since `since`, their rate per hour and how long the backlog takes at that rate
    (None while there is no rate yet)."""

    reviewed: int
    elapsed_s: float
    per_hour: float | None
    backlog: int
    eta_s: float | None


@dataclass(frozen=True)
class DecisionLine:
    """One decision of a submitted review, as decided."""

    action: str
    label_before: str | None
    label_after: str | None
    reason: str | None


@dataclass(frozen=True)
class ReviewSummary:
    """A submitted review: its photo, when, its decisions and the photo's ground truth now."""

    review_id: int
    photo_id: int
    filename: str
    reviewer_id: int | None
    submitted_at: datetime
    decisions: tuple[DecisionLine, ...]
    ground_truth: tuple[str, ...]


def photo_image(actor: Actor, *, photo_id: int, zoom: bool = False, settings: Settings | None = None) -> PhotoImage:
    """Photo `photo_id` of the actor's organization as a JPEG: `SCREEN_SIDE` on its longest side, or every
    pixel (up to `MAX_SIDE`) with `zoom`. A missing file raises NotFound with what to do."""
    actor.require("quality.view")
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        row = s.execute(select(Photo.storage_uri, Photo.width, Photo.height)
                        .where(Photo.organization_id == org, Photo.id == photo_id)).first()
    if row is None:
        raise NotFound(f"Photo #{photo_id} is not in this organization.", hint="Take the next photo.")
    longest = max(int(row.width or 0), int(row.height or 0), 16)
    side = min(longest, MAX_SIDE) if zoom else min(longest, SCREEN_SIDE)
    data = thumbnail(load_image_bytes(row.storage_uri, settings=settings), max(side, 16))
    return PhotoImage(photo_id=photo_id, jpeg=data, side=side, full=side == longest)


def _label_counts(organization_id: int, settings: Settings | None) -> list[list[Any]]:
    counts: Counter[str] = Counter()
    with org_session(organization_id, settings=settings) as s:
        for table in (TRUTH, TAGS):
            newest = (select(table.c.label).where(table.c.organization_id == organization_id)
                      .order_by(table.c.id.desc()).limit(LABEL_SAMPLE_ROWS).subquery())
            counts.update({label: int(n) for label, n in
                           s.execute(select(newest.c.label, func.count()).group_by(newest.c.label))})
    return [[label, n] for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def known_labels(actor: Actor, *, prefix: str = "", limit: int = 500, settings: Settings | None = None) -> list[str]:
    """The organization's labels in use, most used first (those starting with `prefix`, when given)."""
    actor.require("quality.view")
    if not 1 <= limit <= 5000:
        raise ValidationFailed(f"A list of {limit} labels is not offered.", hint="Ask for 1 to 5,000.")
    org = actor.organization_id
    rows = cache.cached((LABELS_CACHE_PREFIX, org, "counts"), LABELS_TTL_S, lambda: _label_counts(org, settings),
                        settings=settings)
    start = normalize_label(prefix)
    return [str(label) for label, _n in rows if str(label).startswith(start)][:limit]


def filter_choices(actor: Actor, *, settings: Settings | None = None) -> FilterChoices:
    """The choices of the queue's filters (see FilterChoices)."""
    actor.require("quality.view")
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        versions = s.execute(select(PromptVersion.id, Prompt.name, PromptVersion.version)
                             .join(Prompt, Prompt.id == PromptVersion.prompt_id)
                             .where(PromptVersion.organization_id == org)
                             .order_by(Prompt.name, PromptVersion.version.desc())).all()
    return FilterChoices(providers=tuple((n, capabilities(n).display_name) for n in PROVIDER_NAMES),
                         models=dict(PROVIDER_MODELS),
                         prompt_versions=tuple((int(v.id), f"{v.name} v{v.version}") for v in versions),
                         labels=tuple(known_labels(actor, settings=settings)))


def queue_filters(actor: Actor, *, label: str | None = None, provider: str | None = None, model: str | None = None,
                  prompt_version_id: int | None = None, first_day: date | None = None, last_day: date | None = None,
                  settings: Settings | None = None) -> QueueFilters:
    """QueueFilters from the screen's picks; days are the organization's calendar days, both included."""
    actor.require("quality.view")
    if first_day is not None and last_day is not None and last_day < first_day:
        raise ValidationFailed(f"The date range ends ({last_day}) before it starts ({first_day}).",
                               hint="Pick the first day, then a day on or after it.")
    since = until = None
    if first_day is not None or last_day is not None:
        with org_session(actor.organization_id, settings=settings) as s:
            tz = org_clock(s, organization_id=actor.organization_id, now=None).tz
        if first_day is not None:
            since = datetime.combine(first_day, time(0), tzinfo=tz)
        if last_day is not None:
            until = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)
    return QueueFilters(label=normalize_label(label) if label and label.strip() else None,
                        provider=provider or None, model=model or None, prompt_version_id=prompt_version_id,
                        since=since, until=until)


def pace(reviewed: int, elapsed_s: float, backlog: int) -> ReviewPace:
    """The rate and ETA from a count over an elapsed time: 12 reviews in 30 min -> 24 an hour, and a backlog of
    84 photos -> 3.5 hours. No rate before the first review or the first second."""
    per_hour = reviewed * 3600.0 / elapsed_s if reviewed > 0 and elapsed_s >= 1 else None
    eta = 0.0 if backlog == 0 else (backlog / per_hour * 3600.0 if per_hour else None)
    return ReviewPace(reviewed=reviewed, elapsed_s=max(elapsed_s, 0.0), per_hour=per_hour, backlog=backlog,
                      eta_s=eta)


def review_pace(actor: Actor, *, since: datetime, backlog: int, now: datetime | None = None,
                settings: Settings | None = None) -> ReviewPace:
    """The acting reviewer's reviews submitted since `since` (their session's start; an undone review no
    longer counts), their rate and the ETA of `backlog` photos at it."""
    actor.require("quality.view")
    now = now or utcnow()
    if actor.user_id is None:
        return pace(0, (now - since).total_seconds(), backlog)
    with org_session(actor.organization_id, settings=settings) as s:
        reviewed = s.scalar(select(func.count()).select_from(Review).where(
            Review.organization_id == actor.organization_id, Review.reviewer_id == actor.user_id,
            Review.submitted_at >= since))
    return pace(int(reviewed or 0), (now - since).total_seconds(), backlog)


def review_summary(actor: Actor, *, review_id: int, settings: Settings | None = None) -> ReviewSummary:
    """What review `review_id` decided (the acting reviewer's own; admins may read anyone's)."""
    actor.require("quality.view")
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        review = s.scalar(select(Review).where(Review.organization_id == org, Review.id == review_id))
        if review is None:
            raise NotFound(f"Review #{review_id} is not in this organization (it may have been undone).",
                           hint="Take the next photo.")
        if review.reviewer_id != actor.user_id and not actor.allowed("audit.view"):
            raise NotFound(f"Review #{review_id} is not one of yours.", hint="Take the next photo.")
        d = ReviewDecision
        lines = s.execute(select(d.action, d.label_before, d.label_after, d.reason)
                          .where(d.review_id == review.id).order_by(d.id)).all()
        truth = s.scalars(select(GroundTruth.label).where(GroundTruth.photo_id == review.photo_id)
                          .order_by(GroundTruth.label))
        filename = s.scalar(select(Photo.filename).where(Photo.id == review.photo_id)) or ""
        return ReviewSummary(review_id=review.id, photo_id=review.photo_id, filename=filename,
                             reviewer_id=review.reviewer_id, submitted_at=review.submitted_at,
                             decisions=tuple(DecisionLine(*row) for row in lines), ground_truth=tuple(truth))


def invalidate_labels(organization_id: int, *, settings: Settings | None = None) -> None:
    """Drop the organization's cached labels (a review added one), so the next screen offers it."""
    cache.invalidate(f"{LABELS_CACHE_PREFIX}:{organization_id}:", settings=settings)
