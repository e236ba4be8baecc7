"""The debug view of one photo: find it (id, filename, tag, status, date) and assemble its timeline.

Everything is read org-scoped in the database (org_session, and every query filters organization_id);
another organization's photo id is NotFound. The timeline shows what was recorded: the photo's enqueue,
each attempt's result row (status, worker, timings, retries, error, trace), the parsed tags with each
rule's thresholds and verdict under the organization's current rules, the cost, and reviewer decisions
(read from the reviews tables directly). Raw provider text is returned as plain strings for inert display.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select

from aiconsole.pipeline.rules import load_rules
from aiconsole.platform.actor import Actor
from aiconsole.platform.clock import org_clock
from aiconsole.platform.db import get_engine, org_session
from aiconsole.platform.db.models import PHOTO_STATUSES, AiProcessingResult, Photo, PhotoTag, ReviewDecision
from aiconsole.platform.errors import NotFound
from aiconsole.platform.money import format_usd
from aiconsole.platform.settings import Settings, get_settings

SEARCH_LIMIT = 25
__all__ = ["PHOTO_STATUSES", "photo_timeline", "search_photos"]


@dataclass(frozen=True)
class PhotoHit:
    id: int
    filename: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class RuleStep:
    label: str
    confidence: float
    accept_at: float
    reject_below: float
    verdict: str


@dataclass(frozen=True)
class Attempt:
    result_id: int
    at: datetime
    status: str
    worker_id: str | None
    provider: str
    model: str
    prompt_version_id: int | None
    queue_wait_ms: int
    provider_ms: int
    total_ms: int
    retry_count: int
    error_kind: str | None
    error: str | None
    cost: str
    tags: tuple[RuleStep, ...]
    trace: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Timeline:
    photo: PhotoHit
    attempts_made: int
    started_at: datetime | None
    completed_at: datetime | None
    last_error: str | None
    attempts: tuple[Attempt, ...]
    total_cost: str
    decisions: tuple[dict[str, Any], ...]


def search_photos(actor: Actor, *, query: str = "", status: str | None = None, day: date | None = None,
                  limit: int = SEARCH_LIMIT, settings: Settings | None = None) -> list[PhotoHit]:
    """Up to `limit` of the org's photos matching id, filename prefix or tag label, status and day; newest first."""
    actor.require("lab.view")
    settings = settings or get_settings()
    q = select(Photo.id, Photo.filename, Photo.status, Photo.created_at).where(
        Photo.organization_id == actor.organization_id)
    term = query.strip()
    if term.isdigit():
        q = q.where(Photo.id == int(term))
    elif term:
        tagged = select(PhotoTag.photo_id).where(PhotoTag.organization_id == actor.organization_id,
                                                 func.lower(PhotoTag.label) == term.lower())
        q = q.where((Photo.filename.like(f"{term}%")) | Photo.id.in_(tagged))
    if status:
        q = q.where(Photo.status == status)
    q = q.order_by(Photo.created_at.desc(), Photo.id.desc()).limit(max(1, min(limit, 100)))
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        if day is not None:
            # The organization's calendar day, as its people read dates on screen.
            tz = org_clock(s, organization_id=actor.organization_id, now=None).tz
            start = datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
            end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
            q = q.where(Photo.created_at >= start, Photo.created_at < end)
        return [PhotoHit(*row) for row in s.execute(q)]


def _decisions(s: Any, organization_id: int, photo_id: int) -> tuple[dict[str, Any], ...]:
    d = ReviewDecision
    rows = s.execute(select(d.created_at, d.action, d.label_before, d.label_after, d.reason, d.ai_verdict,
                            d.reviewer_id).where(d.organization_id == organization_id, d.photo_id == photo_id)
                     .order_by(d.id).limit(200)).mappings().all()
    return tuple(dict(r) for r in rows)


def photo_timeline(actor: Actor, *, photo_id: int, settings: Settings | None = None) -> Timeline:
    """The photo's recorded story; NotFound when it is not this organization's photo."""
    actor.require("lab.view")
    settings = settings or get_settings()
    org = actor.organization_id
    with org_session(org, engine=get_engine(settings)) as s:
        photo = s.scalar(select(Photo).where(Photo.organization_id == org, Photo.id == photo_id))
        if photo is None:
            raise NotFound(f"There is no photo #{photo_id} in this organization.",
                           hint="Search by filename, tag, status or date to find one of this organization's photos.")
        rules = load_rules(s, org)
        results = s.scalars(select(AiProcessingResult).where(
            AiProcessingResult.organization_id == org, AiProcessingResult.photo_id == photo_id)
            .order_by(AiProcessingResult.created_at, AiProcessingResult.id).limit(100)).all()
        attempts = []
        for r in results:
            steps = []
            for t in r.tags or []:
                label, conf = str(t.get("label", "")), float(t.get("confidence", 0.0))
                accept, reject = rules.thresholds(label)
                steps.append(RuleStep(label, conf, accept, reject, rules.verdict(label, conf)))
            attempts.append(Attempt(
                r.id, r.created_at, r.status, r.worker_id, r.ai_provider, r.model, r.prompt_version_id,
                r.queue_wait_time_ms, r.provider_response_time_ms, r.total_processing_time_ms, r.retry_count,
                r.error_kind, r.error, format_usd(r.api_cost_micros, places=4), tuple(steps),
                tuple(dict(x) for x in (r.trace or []))))
        total = sum(r.api_cost_micros for r in results)
        hit = PhotoHit(photo.id, photo.filename, photo.status, photo.created_at)
        return Timeline(hit, photo.attempts, photo.started_at, photo.completed_at, photo.last_error,
                        tuple(attempts), format_usd(total, places=4), _decisions(s, org, photo_id))
