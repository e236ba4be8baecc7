"""Live Status queue queries: photo counts, throughput, waits, drain estimate.

The queue comes from `photos` (its status indexes) and the hourly rollups of the last 24 h. Provider health
is `aiconsole.pipeline.health_report`'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aiconsole.pipeline.queue import lease_expired
from aiconsole.platform.clock import Clock
from aiconsole.platform.db.models import (
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    Photo,
    ProcessingRollupHourly,
)
from aiconsole.platform.db.sql import HistogramPercentile, floor_hour, percentile_from_histogram

THROUGHPUT_HOURS = 24
# Photo states still in play; "completed" is the one that grows without bound.
OPEN_STATUSES = ("pending", "processing", "needs_review", "failed")

_R = ProcessingRollupHourly
_A = AiProcessingResult


# ---------------------------------------------------------------------------------------------- queue


def queue_counts(session: Session, *, organization_id: int,
                 statuses: tuple[str, ...] = OPEN_STATUSES) -> dict[str, int]:
    """Photos per status in `statuses` (every one present, 0 when none)."""
    rows = session.execute(
        select(Photo.status, func.count())
        .where(Photo.organization_id == organization_id, Photo.status.in_(statuses))
        .group_by(Photo.status)
    ).all()
    counts = dict.fromkeys(statuses, 0)
    for status, n in rows:
        counts[status] = int(n)
    return counts


def stuck_count(session: Session, *, organization_id: int, now: datetime) -> int:
    """Photos in processing whose lease expired (the queue's one definition of stuck)."""
    return int(session.scalar(
        select(func.count()).select_from(Photo).where(Photo.organization_id == organization_id, lease_expired(now))
    ) or 0)


def _throughput_hours(organization_id: int, clock: Clock) -> tuple[Any, ...]:
    """The rollup rows of the current hour and the THROUGHPUT_HOURS - 1 before it."""
    last = floor_hour(clock.now)
    first = last - timedelta(hours=THROUGHPUT_HOURS - 1)
    return _R.organization_id == organization_id, _R.hour >= first, _R.hour <= last


def hourly_throughput(session: Session, *, organization_id: int, clock: Clock) -> pd.DataFrame:
    """hour (local), provider, completed (completed + needs_review), failed over the last 24 hours."""
    rows = session.execute(
        select(_R.hour, _R.ai_provider, (_R.completed_count + _R.needs_review_count).label("completed"),
               _R.failed_count.label("failed"))
        .where(*_throughput_hours(organization_id, clock))
        .order_by(_R.hour, _R.ai_provider)
    ).all()
    throughput = pd.DataFrame(
        [(h.astimezone(clock.tz), p, int(c), int(f)) for h, p, c, f in rows],
        columns=["hour", "provider", "completed", "failed"],
    )
    if throughput.empty:
        throughput = throughput.astype({"completed": "int64", "failed": "int64"})
        throughput["hour"] = pd.Series(dtype=f"datetime64[ns, {clock.tz.key}]")
    return throughput


def queue_waits(session: Session, *, organization_id: int,
                clock: Clock) -> tuple[float | None, HistogramPercentile | None, int]:
    """Average wait (ms), the p95 wait from the rollups' histogram, and the samples, over the last 24 hours."""
    buckets = [getattr(_R, f"wait_b{i}") for i in range(len(WAIT_BUCKETS_MS) + 1)]
    wait = session.execute(
        select(func.sum(_R.queue_wait_ms_sum), func.sum(_R.results_count), *[func.sum(b) for b in buckets])
        .where(*_throughput_hours(organization_id, clock))
    ).one()
    wait_sum, wait_n = int(wait[0] or 0), int(wait[1] or 0)
    counts_by_bucket = [int(v or 0) for v in wait[2:]]
    return (None if wait_n == 0 else wait_sum / wait_n,
            percentile_from_histogram(counts_by_bucket, WAIT_BUCKETS_MS, 0.95),
            sum(counts_by_bucket))


def oldest_due_pending(session: Session, *, organization_id: int, now: datetime) -> datetime | None:
    """When the oldest pending photo that is due (no retry delay left) was queued."""
    return session.execute(
        select(func.min(Photo.created_at)).where(
            Photo.organization_id == organization_id,
            Photo.status == "pending",
            or_(Photo.next_attempt_at.is_(None), Photo.next_attempt_at <= now),
        )
    ).scalar_one_or_none()


def drain_estimate(*, pending: int, processed_last_hour: int, paused: bool) -> tuple[timedelta | None, str]:
    """How long the pending photos take at the last hour's rate (None: no estimate), and why."""
    if pending == 0:
        return timedelta(0), "The queue is empty."
    if paused:
        return None, "Processing is paused; nothing drains until it is resumed."
    if processed_last_hour == 0:
        return None, "Nothing was processed in the last hour, so there is no rate to estimate from."
    return (timedelta(hours=pending / processed_last_hour),
            f"{pending:,} pending at the last hour's rate of {processed_last_hour:,} processed per hour.")
