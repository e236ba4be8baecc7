"""Live Status queue and provider queries: photo counts, throughput, waits, drain estimate, provider health.

The queue comes from `photos` (its status indexes) and the hourly rollups of the last 24 h; provider
latency and error rate from the last 15 minutes of results, with a fresh health-check row taking
precedence over traffic for a provider's status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from aiconsole.live.windows import Clock
from aiconsole.pipeline.provider_health import health_status
from aiconsole.platform.db.models import (
    PROVIDERS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    AiProviderHealth,
    Photo,
    PipelineConfig,
    ProcessingRollupHourly,
    ProviderConfig,
)
from aiconsole.platform.db.sql import HistogramPercentile, floor_hour, grouped_percentiles, percentile_from_histogram

HEALTH_WINDOW = timedelta(minutes=15)
# A health-check row older than this no longer decides a provider's status; its traffic does.
HEALTH_CHECK_FRESH = timedelta(minutes=30)
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


# ------------------------------------------------------------------------------------------ providers


def ordered_providers(providers: Iterable[str]) -> list[str]:
    """The known providers in their fixed order, then any others alphabetically."""
    known = [p for p in PROVIDERS if p in set(providers)]
    return known + sorted(set(providers) - set(PROVIDERS))


def provider_traffic(session: Session, *, organization_id: int,
                     clock: Clock) -> tuple[dict[str, tuple[int, int]], dict[Any, tuple[float, ...]]]:
    """Per provider over the health window: (results, failed), and (p50, p95) response time in ms."""
    start = clock.now - HEALTH_WINDOW
    in_window = (_A.organization_id == organization_id, _A.created_at >= start, _A.created_at < clock.now)
    traffic = {
        p: (int(n), int(f or 0))
        for p, n, f in session.execute(
            select(_A.ai_provider, func.count(), func.sum(case((_A.status == "failed", 1), else_=0)))
            .where(*in_window)
            .group_by(_A.ai_provider)
        ).all()
    }
    latency = grouped_percentiles(
        session, value=_A.provider_response_time_ms, group=_A.ai_provider,
        where=[*in_window, _A.provider_response_time_ms > 0], quantiles=(0.5, 0.95),
    )
    return traffic, latency


def used_providers(session: Session, *, organization_id: int, config: PipelineConfig | None,
                   with_traffic: Iterable[str]) -> list[str]:
    """The providers enabled, configured as active or fallback, or with traffic ("local" when none)."""
    configured = set(session.execute(
        select(ProviderConfig.provider).where(ProviderConfig.organization_id == organization_id,
                                              ProviderConfig.enabled.is_(True))
    ).scalars())
    if config is not None:
        configured.add(config.active_provider)
        if config.fallback_provider:
            configured.add(config.fallback_provider)
    return ordered_providers(configured | set(with_traffic)) or ["local"]


def latest_check(session: Session, *, organization_id: int, provider: str, now: datetime) -> Any:
    """The provider's newest health-check row up to `now` (this organization's or global), or None."""
    return session.execute(
        select(AiProviderHealth.status, AiProviderHealth.last_check, AiProviderHealth.response_time_ms)
        .where(AiProviderHealth.provider_name == provider,
               or_(AiProviderHealth.organization_id == organization_id,
                   AiProviderHealth.organization_id.is_(None)),
               AiProviderHealth.last_check <= now)
        .order_by(AiProviderHealth.last_check.desc())
        .limit(1)
    ).first()


def provider_status(check: Any, *, results: int, error_rate: float | None, now: datetime) -> tuple[str, str]:
    """(status, source): a fresh check decides ("check"), else the traffic's error rate ("traffic")."""
    if check is not None and now - check.last_check <= HEALTH_CHECK_FRESH:
        return check.status, "check"
    if results:
        assert error_rate is not None
        return health_status(error_rate=error_rate, circuit="closed"), "traffic"
    return "unknown", "none"
