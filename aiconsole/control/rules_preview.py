"""The processing rules' impact preview, in the database: one query classifies every AI tag of the window's
results under both rule sets with the tag rule's own SQL form (`pipeline.rules.verdict_sql`) and folds them
per result, another counts the tags' confidences into CONFIDENCE_BUCKETS equal-width buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from aiconsole.control.rules_config import RulesConfig
from aiconsole.pipeline.rules import RuleSet, verdict_sql
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import AiProcessingResult, PhotoTag, PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ValidationFailed

MAX_PREVIEW_DAYS = 90
CONFIDENCE_BUCKETS = 50


@dataclass(frozen=True)
class VerdictCounts:
    """Tags per verdict and photos (results) per status under one rule set."""

    tags_accepted: int
    tags_review: int
    tags_rejected: int
    photos_completed: int
    photos_review: int


@dataclass(frozen=True)
class ImpactPreview:
    """The window's tags and photos under the current and the proposed rules, and their confidence histogram."""

    days: int
    since: datetime
    photos: int
    tags: int
    current: VerdictCounts
    proposed: VerdictCounts
    histogram: tuple[int, ...]  # CONFIDENCE_BUCKETS counts; bucket i holds i/N <= confidence < (i+1)/N, 1.0 last


def _count(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _window(organization_id: int, since: datetime) -> ColumnElement[bool]:
    r = AiProcessingResult
    return and_(r.organization_id == organization_id, r.created_at >= since, r.status != "failed")


def _verdict_counts(s: Session, organization_id: int, since: datetime,
                    rule_sets: tuple[RuleSet, RuleSet]) -> tuple[int, int, list[VerdictCounts]]:
    t = PhotoTag
    joined = and_(t.result_id == AiProcessingResult.id, t.organization_id == organization_id, t.source == "ai")
    per_result = []
    for i, rules in enumerate(rule_sets):
        verdict = verdict_sql(rules, t.label, t.confidence)
        has_tag = t.id.is_not(None)  # the outer join gives a tagless result one row with no tag
        per_result += [_count(and_(has_tag, verdict == v)).label(f"{v}_{i}")
                       for v in ("accepted", "needs_review", "rejected")]
    inner = (select(AiProcessingResult.id, func.count(t.id).label("tags"), *per_result)
             .select_from(AiProcessingResult).outerjoin(t, joined)
             .where(_window(organization_id, since)).group_by(AiProcessingResult.id).subquery())
    cols: list[ColumnElement[Any]] = [func.count(), func.coalesce(func.sum(inner.c.tags), 0)]
    for i in range(len(rule_sets)):
        cols += [func.coalesce(func.sum(inner.c[f"{v}_{i}"]), 0) for v in ("accepted", "needs_review", "rejected")]
        cols += [_count(inner.c[f"needs_review_{i}"] == 0), _count(inner.c[f"needs_review_{i}"] > 0)]
    row = s.execute(select(*cols)).one()
    values = [int(v) for v in row]
    counts = [VerdictCounts(*values[2 + 5 * i: 7 + 5 * i]) for i in range(len(rule_sets))]
    return values[0], values[1], counts


def _histogram(s: Session, organization_id: int, since: datetime) -> tuple[int, ...]:
    t, n = PhotoTag.confidence, CONFIDENCE_BUCKETS
    # Bounds compared as i / n, not confidence * n cast to an integer: 0.58 * 50 is 28.999... in floating point.
    cols = [_count(and_(t >= i / n, t < (i + 1) / n) if i < n - 1 else t >= i / n) for i in range(n)]
    query = (select(*cols).select_from(PhotoTag)
             .join(AiProcessingResult, PhotoTag.result_id == AiProcessingResult.id)
             .where(_window(organization_id, since), PhotoTag.organization_id == organization_id,
                    PhotoTag.source == "ai"))
    return tuple(int(v) for v in s.execute(query).one())


def impact_preview(actor: Actor, *, rules: RulesConfig, days: int = 7, now: datetime | None = None) -> ImpactPreview:
    """How the last `days` days' AI tags and photos come out under `rules` versus the rules in force."""
    actor.require("pipeline.view")
    if not 1 <= days <= MAX_PREVIEW_DAYS:
        raise ValidationFailed(f"The preview window of {days} days is outside 1..{MAX_PREVIEW_DAYS}.",
                               hint="Longer windows scan more tags than a preview should; pick fewer days.")
    since = (now or utcnow()) - timedelta(days=days)
    with org_session(actor.organization_id) as s:
        current = RuleSet.from_config(s.get(PipelineConfig, actor.organization_id))
        photos, tags, (cur, new) = _verdict_counts(s, actor.organization_id, since, (current, rules.rule_set()))
        histogram = _histogram(s, actor.organization_id, since)
    return ImpactPreview(days=days, since=since, photos=photos, tags=tags, current=cur, proposed=new,
                         histogram=histogram)
