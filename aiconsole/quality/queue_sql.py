"""The review queue's SQL pieces, shared by the queue's reads (review_queue) and its index-driven next-photo
queries (queue_next): which tags put a photo in an order's queue, which photos match, the random order's key.

A tag waits for review while no reviewer has decided it (reviewed_at is NULL) and it is an AI tag; for the
lowest-confidence and oldest orders it must also be in the review band: recorded as needs_review, or between
the reject and accept thresholds of the organization's current rules (`pipeline.rules.verdict_sql`). The
disagreement order takes any undecided AI tag, like the random sample, of photos whose sources disagree:
their photo_disagreements Jaccard is below the organization's threshold (quality_settings).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, ColumnElement, Table, exists, func, literal, or_, select

from aiconsole.pipeline.rules import RuleSet, normalize_label, verdict_sql
from aiconsole.platform.db.models import (
    DEFAULT_DISAGREEMENT_THRESHOLD,
    AiProcessingResult,
    Photo,
    PhotoDisagreement,
    PhotoTag,
    QualitySetting,
    ReviewClaim,
)

PHOTOS = cast(Table, Photo.__table__)
TAGS = cast(Table, PhotoTag.__table__)
RESULTS = cast(Table, AiProcessingResult.__table__)
CLAIMS = cast(Table, ReviewClaim.__table__)
DISAGREEMENTS = cast(Table, PhotoDisagreement.__table__)
SETTINGS = cast(Table, QualitySetting.__table__)

REVIEWABLE_STATUSES = ("completed", "needs_review")
UNBANDED_ORDERS = ("random", "disagreement")  # orders that take any undecided AI tag, not just the band's
# The random order's key is integer SQL that SQLite and PostgreSQL compute alike: every value stays below
# PRIME < 2^31, so no product passes 2^62.
_PRIME = 2_147_483_629
_MIX_ROUNDS = 3


@dataclass(frozen=True)
class QueueFilters:
    """Which photos a reviewer works through: a tag's label, the provider, model or prompt version that
    produced it, and when the photo arrived ([since, until))."""

    label: str | None = None
    provider: str | None = None
    model: str | None = None
    prompt_version_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def _mix_constants(seed: int) -> list[int]:
    digest = hashlib.sha256(f"review-queue/{seed}".encode()).digest()
    return [1 + int.from_bytes(digest[4 * i:4 * i + 4], "big") % (_PRIME - 1) for i in range(2 * _MIX_ROUNDS)]


def random_key(photo_id: Any, seed: int) -> ColumnElement[int]:
    """The random order's key of a photo: rounds of x -> (a x + b)^2 mod PRIME with the seed's own a, b (squaring
    breaks the lattice an affine map alone leaves in consecutive ids); ties (rare) fall back to the id."""
    def n(value: int) -> ColumnElement[int]:
        return literal(value, BigInteger)

    c = _mix_constants(seed)
    x: Any = photo_id % n(_PRIME)
    for r in range(_MIX_ROUNDS):
        x = (x * n(c[2 * r]) + n(c[2 * r + 1])) % n(_PRIME)
        x = (x * x) % n(_PRIME)
    return cast(ColumnElement[int], x)


def tag_match(org: int, rules: RuleSet, order: str, filters: QueueFilters, *,
              correlated: bool = True) -> list[ColumnElement[bool]]:
    """The undecided AI tags of the photo (correlated to PHOTOS, unless `correlated=False`: any photo's) that put
    it in this order's queue."""
    t = TAGS.c
    conds: list[ColumnElement[bool]] = [t.organization_id == org, t.reviewed_at.is_(None), t.source == "ai"]
    if correlated:
        conds.append(t.photo_id == PHOTOS.c.id)
    if order not in UNBANDED_ORDERS:
        conds.append(or_(t.review_state == "needs_review",
                         verdict_sql(rules, t.label, t.confidence) == "needs_review"))
    if filters.label is not None and normalize_label(filters.label):
        conds.append(t.label == normalize_label(filters.label))
    produced: list[ColumnElement[bool]] = []
    if filters.provider:
        produced.append(RESULTS.c.ai_provider == filters.provider)
    if filters.model:
        produced.append(RESULTS.c.model == filters.model)
    if filters.prompt_version_id is not None:
        produced.append(RESULTS.c.prompt_version_id == filters.prompt_version_id)
    if produced:
        conds.append(exists(select(RESULTS.c.id).where(RESULTS.c.id == t.result_id, *produced)))
    return conds


def photo_match(org: int, rules: RuleSet, order: str, filters: QueueFilters, *,
                with_tags: bool = True) -> list[ColumnElement[bool]]:
    """The photo is in the order's queue as filtered: reviewable, in the dates, and (unless a query reaches it
    through one of its waiting tags: `with_tags=False`) has a tag that puts it there."""
    p = PHOTOS.c
    conds = [p.organization_id == org, p.status.in_(REVIEWABLE_STATUSES)]
    if with_tags:
        conds.append(exists(select(TAGS.c.id).where(*tag_match(org, rules, order, filters))))
    if order == "disagreement":
        d = DISAGREEMENTS.c
        conds.append(exists(select(d.photo_id).where(d.photo_id == p.id, d.organization_id == org,
                                                     d.jaccard < threshold_sql(org))))
    return conds + arrived(filters)


def threshold_sql(org: int) -> ColumnElement[float]:
    """The organization's disagreement threshold as SQL (its quality_settings row, else the default)."""
    row = select(SETTINGS.c.disagreement_threshold).where(SETTINGS.c.organization_id == org).scalar_subquery()
    return cast(ColumnElement[float], func.coalesce(row, DEFAULT_DISAGREEMENT_THRESHOLD))


def arrived(filters: QueueFilters) -> list[ColumnElement[bool]]:
    """The photo arrived in the filters' [since, until)."""
    p = PHOTOS.c
    conds: list[ColumnElement[bool]] = []
    if filters.since is not None:
        conds.append(p.created_at >= filters.since)
    if filters.until is not None:
        conds.append(p.created_at < filters.until)
    return conds
