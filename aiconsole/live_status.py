"""Live Status data: status cards, queue monitor, cost monitor and provider health for one organization.

Every function takes keyword-only `organization_id` and `now` (aware; default: the current time, so
tests can pin it) and runs in `org_session(organization_id)`. "Today" and "this month" are calendar
periods in the organization's time zone.

Where the figures come from:
- history (today, yesterday, this month, the last 24 h) from `processing_rollups_hourly`; an hourly
  rollup row covers a whole UTC hour, so the pieces of a window that only partly cover an hour (the
  current hour, a day that starts at :30 in Asia/Kolkata, "same time yesterday") are read from
  `ai_processing_results` directly, through its (organization_id, created_at, ai_provider) index. Every
  window is therefore exact to the second while never reading more than about two hours of results;
- the queue from `photos` (its status indexes);
- provider latency and error rate from the last 15 minutes of results.

"Processed" means a result with tags: status completed or needs_review. Failed results are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from sqlalchemy import Integer, SQLColumnExpression, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from aiconsole import cache
from aiconsole.config import get_settings
from aiconsole.db.engine import org_session
from aiconsole.db.models import (
    PHOTO_STATUSES,
    PROVIDERS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    AiProviderHealth,
    Organization,
    Photo,
    PipelineConfig,
    ProcessingRollupHourly,
    ProviderConfig,
)
from aiconsole.db.sql import (
    HistogramPercentile,
    ceil_hour,
    floor_hour,
    grouped_percentiles,
    percentile_from_histogram,
)
from aiconsole.db.types import utcnow
from aiconsole.errors import ConfigError, NotFound

N = TypeVar("N", int, float)

HEALTH_WINDOW = timedelta(minutes=15)
# A health-check row older than this no longer decides a provider's status; its traffic does.
HEALTH_CHECK_FRESH = timedelta(minutes=30)
# Error-rate thresholds for a status derived from traffic.
DOWN_ERROR_RATE = 0.5
DEGRADED_ERROR_RATE = 0.1
THROUGHPUT_HOURS = 24
# Photo states still in play; "completed" is the one that grows without bound.
OPEN_STATUSES = ("pending", "processing", "needs_review", "failed")
COMPLETED_COUNT_TTL = 60.0
LIVE_CACHE_PREFIX = "live"

_R = ProcessingRollupHourly
_A = AiProcessingResult


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Compared(Generic[N]):
    """A figure now and the same figure at the same time of day yesterday."""

    value: N | None
    previous: N | None

    @property
    def delta(self) -> N | None:
        """value - previous, or None when either is unknown."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass(frozen=True)
class StatusCards:
    """The headline cards. Queue counts are the current state of `photos` (no history, so no delta)."""

    as_of: datetime
    timezone: str
    day_start: datetime
    processed_today: Compared[int]
    pending: int
    processing: int
    failed: int
    needs_review: int
    avg_confidence_today: Compared[float]
    error_rate_last_hour: Compared[float]
    results_last_hour: int
    spend_today_micros: Compared[int]
    daily_budget_micros: int | None
    spend_month_micros: int
    monthly_budget_micros: int | None
    paused: bool
    pause_reason: str | None
    paused_at: datetime | None

    @property
    def daily_budget_used(self) -> float | None:
        """Today's spend as a fraction of the daily budget (None without a budget)."""
        return _fraction(self.spend_today_micros.value or 0, self.daily_budget_micros)

    @property
    def monthly_budget_used(self) -> float | None:
        """Month-to-date spend as a fraction of the monthly budget (None without a budget)."""
        return _fraction(self.spend_month_micros, self.monthly_budget_micros)


@dataclass(frozen=True, eq=False)
class QueueMonitor:
    """The queue: counts by status, hourly throughput, waits, backlog age and drain estimate.

    `counts` holds the open states (pending, processing, needs_review, failed), counted exactly on every
    refresh through the (organization_id, status) index. Completed photos are left out on purpose: with
    a million of them that one count costs more than the whole refresh; `photo_status_counts()` gives
    all five states, cached for a minute.

    `p95_wait` is read from the rollups' wait histogram of the last 24 h, interpolating linearly inside
    the bucket that holds the 95th percentile: the true p95 lies in [p95_wait.low, p95_wait.high], so the
    error is at most that bucket's width (e.g. 45 s for a p95 between 15 s and 60 s); in the open top
    bucket (over 24 h) only the lower bound is known.

    `throughput` has one row per (hour, provider) with traffic over the current hour and the 23 before
    it: hour (start of the hour, in the organization's time zone), provider, completed (processed:
    completed + needs_review results), failed.
    """

    as_of: datetime
    counts: dict[str, int]
    throughput: pd.DataFrame
    avg_wait_ms: float | None
    p95_wait: HistogramPercentile | None
    wait_samples: int
    oldest_due_pending_at: datetime | None
    processed_last_hour: int
    drain_eta: timedelta | None
    drain_note: str

    @property
    def p95_wait_ms(self) -> float | None:
        """The p95 queue wait estimate in ms (see `p95_wait` for its bucket and error bound)."""
        return None if self.p95_wait is None else self.p95_wait.value

    @property
    def oldest_due_pending_age(self) -> timedelta | None:
        """How long the oldest photo that is due for processing has been waiting."""
        if self.oldest_due_pending_at is None:
            return None
        return max(timedelta(0), self.as_of - self.oldest_due_pending_at)


@dataclass(frozen=True, eq=False)
class CostMonitor:
    """Spend today and this month, by provider, against the budgets, with a month-end projection.

    `by_provider`: provider, today_micros, month_micros (providers with spend this month).
    `budgets`: period ("today", "month"), spent_micros, budget_micros (None: no budget), projected_micros.
    """

    as_of: datetime
    by_provider: pd.DataFrame
    today_micros: int
    month_micros: int
    daily_budget_micros: int | None
    monthly_budget_micros: int | None
    elapsed_days: float
    month_days: float
    daily_average_micros: int
    projected_month_micros: int
    budgets: pd.DataFrame


@dataclass(frozen=True)
class ProviderHealth:
    """One provider's health: status, where it came from, and its last 15 minutes of traffic."""

    provider: str
    status: str
    status_source: str  # "check" (a fresh ai_provider_health row), "traffic", or "none"
    results: int
    failed: int
    error_rate: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    last_check: datetime | None
    last_check_status: str | None
    last_check_response_ms: int | None


@dataclass(frozen=True)
class ProviderHealthReport:
    """Health of every provider this organization uses."""

    as_of: datetime
    window: timedelta
    providers: tuple[ProviderHealth, ...]

    def frame(self) -> pd.DataFrame:
        """One row per provider (the columns of ProviderHealth), for tables and charts."""
        columns = list(ProviderHealth.__dataclass_fields__)
        return pd.DataFrame([[getattr(p, c) for c in columns] for p in self.providers], columns=columns)


@dataclass(frozen=True, eq=False)
class LiveSnapshot:
    """Everything one Live Status refresh shows, from one database session."""

    status: StatusCards
    queue: QueueMonitor
    cost: CostMonitor
    providers: ProviderHealthReport


# ---------------------------------------------------------------------------------------------- clock


@dataclass(frozen=True)
class _Clock:
    now: datetime
    tz: ZoneInfo
    day_start: datetime
    yesterday_start: datetime
    yesterday_same_time: datetime
    month_start: datetime
    next_month_start: datetime


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _clock(session: Session, organization_id: int, now: datetime | None) -> _Clock:
    if now is None:
        now = utcnow()
    elif now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (e.g. datetime.now(UTC))")
    now = now.astimezone(UTC)
    tz_name = session.execute(
        select(Organization.timezone).where(Organization.id == organization_id)
    ).scalar_one_or_none()
    if tz_name is None:
        raise NotFound(f"Organization {organization_id} does not exist or is not visible to you.",
                       hint="Pick an organization from the sidebar or check the id.")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"Organization {organization_id} has an unknown time zone {tz_name!r}.",
            hint="Set an IANA zone name such as 'Europe/Berlin' in the organization settings.",
        ) from err
    local = now.astimezone(tz)
    today = local.date()
    yesterday = today - timedelta(days=1)
    first = today.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    # Wall-clock "same time yesterday", so a DST change day still compares 14:00 with 14:00.
    same_time = datetime.combine(yesterday, local.time().replace(tzinfo=None), tzinfo=tz).astimezone(UTC)
    return _Clock(
        now=now, tz=tz,
        day_start=_local_midnight(today, tz),
        yesterday_start=_local_midnight(yesterday, tz),
        yesterday_same_time=min(same_time, _local_midnight(today, tz)),
        month_start=_local_midnight(first, tz),
        next_month_start=_local_midnight(next_first, tz),
    )


# ------------------------------------------------------------------------------------ window totals


@dataclass
class _Totals:
    results: int = 0
    completed: int = 0
    needs_review: int = 0
    failed: int = 0
    cost_micros: int = 0
    confidence_sum: float = 0.0
    confidence_count: int = 0

    @property
    def processed(self) -> int:
        return self.completed + self.needs_review

    def add(self, other: _Totals) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_FIELDS = tuple(_Totals.__dataclass_fields__)

# The same figures from a rollup row and from raw results; rollups.rebuild_rollups must agree.
_ROLLUP_COLUMNS: dict[str, SQLColumnExpression[Any]] = {
    "results": _R.results_count,
    "completed": _R.completed_count,
    "needs_review": _R.needs_review_count,
    "failed": _R.failed_count,
    "cost_micros": _R.cost_micros,
    "confidence_sum": _R.confidence_sum,
    "confidence_count": _R.confidence_count,
}
_RESULT_EXPRS: dict[str, SQLColumnExpression[Any]] = {
    "results": literal(1, Integer),
    "completed": case((_A.status == "completed", 1), else_=0),
    "needs_review": case((_A.status == "needs_review", 1), else_=0),
    "failed": case((_A.status == "failed", 1), else_=0),
    "cost_micros": _A.api_cost_micros,
    "confidence_sum": func.coalesce(_A.avg_confidence, 0.0),
    "confidence_count": case((_A.avg_confidence.is_not(None), 1), else_=0),
}

Window = tuple[datetime, datetime]


def _split(window: Window) -> tuple[Window | None, list[Window]]:
    """A window as whole UTC hours (for the rollups) plus the partial-hour pieces (for raw results)."""
    start, end = window
    if end <= start:
        return None, []
    whole_start, whole_end = ceil_hour(start), floor_hour(end)
    if whole_start >= whole_end:  # no whole hour inside: read it all from results
        return None, [(start, end)]
    pieces = [p for p in ((start, whole_start), (whole_end, end)) if p[0] < p[1]]
    return (whole_start, whole_end), pieces


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return 0.0 if name == "confidence_sum" else 0
    return float(value) if name == "confidence_sum" else int(value)


def _parts(ranges: Iterable[Window]) -> list[datetime]:
    """The sorted boundaries that cut `ranges` into elementary intervals [b[j], b[j+1])."""
    return sorted({t for r in ranges for t in r})


def _part_index(column: Any, bounds: list[datetime]) -> Any:
    # Elementary interval number j of a timestamp in [bounds[0], bounds[-1]).
    if len(bounds) == 2:
        return literal(0, Integer)
    return case(*[(column < bounds[j + 1], j) for j in range(len(bounds) - 2)], else_=len(bounds) - 2)


def _assign(ranges: Mapping[str, list[Window]], bounds: list[datetime],
            part_totals: Mapping[tuple[str, int], _Totals], out: dict[str, dict[str, _Totals]]) -> None:
    """Add each elementary interval's totals to every window whose ranges cover it."""
    for name, windows in ranges.items():
        for start, end in windows:
            first, last = bounds.index(start), bounds.index(end)
            for (provider, j), totals in part_totals.items():
                if first <= j < last:
                    out[name].setdefault(provider, _Totals()).add(totals)


def _window_totals(session: Session, organization_id: int,
                   windows: Mapping[str, Window]) -> dict[str, dict[str, _Totals]]:
    """Per window name and provider, the totals over [start, end).

    Whole hours come from the rollups, the partial hours from results, one query each: the windows'
    boundaries cut time into elementary intervals, SQL sums per (provider, interval) and each window
    adds up the intervals it covers. Only the partial-hour ranges of results are read (OR of ranges,
    each an index range scan), never the stretches between them.
    """
    out: dict[str, dict[str, _Totals]] = {name: {} for name in windows}
    whole: dict[str, list[Window]] = {}
    pieces: dict[str, list[Window]] = {}
    for name, window in windows.items():
        hours, partial = _split(window)
        whole[name] = [hours] if hours is not None else []
        pieces[name] = partial

    hour_ranges = [r for rs in whole.values() for r in rs]
    if hour_ranges:
        bounds = _parts(hour_ranges)
        part = _part_index(_R.hour, bounds).label("part")
        rows = session.execute(
            select(_R.ai_provider, part, *[func.sum(_ROLLUP_COLUMNS[f]) for f in _FIELDS])
            .where(_R.organization_id == organization_id, _R.hour >= bounds[0], _R.hour < bounds[-1])
            .group_by(_R.ai_provider, part)
        ).all()
        _assign(whole, bounds, _part_totals(rows), out)

    result_ranges = list(dict.fromkeys(r for rs in pieces.values() for r in rs))
    if result_ranges:
        bounds = _parts(result_ranges)
        part = _part_index(_A.created_at, bounds).label("part")
        in_ranges = or_(*[and_(_A.organization_id == organization_id, _A.created_at >= start,
                               _A.created_at < end) for start, end in result_ranges])
        rows = session.execute(
            select(_A.ai_provider, part, *[func.sum(_RESULT_EXPRS[f]) for f in _FIELDS])
            .where(in_ranges)
            .group_by(_A.ai_provider, part)
        ).all()
        _assign(pieces, bounds, _part_totals(rows), out)
    return out


def _part_totals(rows: Iterable[Any]) -> dict[tuple[str, int], _Totals]:
    return {(row[0], int(row[1])): _Totals(*[_coerce(f, v) for f, v in zip(_FIELDS, row[2:], strict=True)])
            for row in rows}


def _sum(per_provider: Mapping[str, _Totals]) -> _Totals:
    total = _Totals()
    for t in per_provider.values():
        total.add(t)
    return total


def _fraction(part: int, whole: int | None) -> float | None:
    return None if not whole else part / whole


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _avg_confidence(t: _Totals) -> float | None:
    return None if t.confidence_count == 0 else t.confidence_sum / t.confidence_count


# ------------------------------------------------------------------------------------------ fetchers


@dataclass
class _Facts:
    """What one refresh reads once and the four parts share."""

    clock: _Clock
    config: PipelineConfig | None
    totals: dict[str, dict[str, _Totals]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _windows(clock: _Clock, names: Iterable[str]) -> dict[str, Window]:
    every = {
        "today": (clock.day_start, clock.now),
        "yesterday": (clock.yesterday_start, clock.yesterday_same_time),
        "month": (clock.month_start, clock.now),
        "last_hour": (clock.now - timedelta(hours=1), clock.now),
        "last_hour_yesterday": (clock.yesterday_same_time - timedelta(hours=1), clock.yesterday_same_time),
    }
    return {name: every[name] for name in names}


def _facts(session: Session, organization_id: int, now: datetime | None, windows: Iterable[str],
           counts: bool) -> _Facts:
    clock = _clock(session, organization_id, now)
    config = session.get(PipelineConfig, organization_id)
    facts = _Facts(clock=clock, config=config)
    facts.totals = _window_totals(session, organization_id, _windows(clock, windows))
    if counts:
        facts.counts = _queue_counts(session, organization_id)
    return facts


def _queue_counts(session: Session, organization_id: int,
                  statuses: tuple[str, ...] = OPEN_STATUSES) -> dict[str, int]:
    rows = session.execute(
        select(Photo.status, func.count())
        .where(Photo.organization_id == organization_id, Photo.status.in_(statuses))
        .group_by(Photo.status)
    ).all()
    counts = dict.fromkeys(statuses, 0)
    for status, n in rows:
        counts[status] = int(n)
    return counts


# ------------------------------------------------------------------------------------------ builders


def _build_status(facts: _Facts) -> StatusCards:
    t = facts.totals
    today, yday = _sum(t["today"]), _sum(t["yesterday"])
    hour, hour_yday = _sum(t["last_hour"]), _sum(t["last_hour_yesterday"])
    month = _sum(t["month"])
    cfg = facts.config
    return StatusCards(
        as_of=facts.clock.now,
        timezone=facts.clock.tz.key,
        day_start=facts.clock.day_start,
        processed_today=Compared(today.processed, yday.processed),
        pending=facts.counts["pending"],
        processing=facts.counts["processing"],
        failed=facts.counts["failed"],
        needs_review=facts.counts["needs_review"],
        avg_confidence_today=Compared(_avg_confidence(today), _avg_confidence(yday)),
        error_rate_last_hour=Compared(_rate(hour.failed, hour.results),
                                      _rate(hour_yday.failed, hour_yday.results)),
        results_last_hour=hour.results,
        spend_today_micros=Compared(today.cost_micros, yday.cost_micros),
        daily_budget_micros=cfg.daily_budget_micros if cfg else None,
        spend_month_micros=month.cost_micros,
        monthly_budget_micros=cfg.monthly_budget_micros if cfg else None,
        paused=bool(cfg and cfg.paused),
        pause_reason=cfg.pause_reason if cfg and cfg.paused else None,
        paused_at=cfg.paused_at if cfg and cfg.paused else None,
    )


def _build_queue(session: Session, organization_id: int, facts: _Facts) -> QueueMonitor:
    clock = facts.clock
    last = floor_hour(clock.now)
    first = last - timedelta(hours=THROUGHPUT_HOURS - 1)
    in_range = (_R.organization_id == organization_id, _R.hour >= first, _R.hour <= last)
    rows = session.execute(
        select(_R.hour, _R.ai_provider, (_R.completed_count + _R.needs_review_count).label("completed"),
               _R.failed_count.label("failed"))
        .where(*in_range)
        .order_by(_R.hour, _R.ai_provider)
    ).all()
    throughput = pd.DataFrame(
        [(h.astimezone(clock.tz), p, int(c), int(f)) for h, p, c, f in rows],
        columns=["hour", "provider", "completed", "failed"],
    )
    if throughput.empty:
        throughput = throughput.astype({"completed": "int64", "failed": "int64"})
        throughput["hour"] = pd.Series(dtype=f"datetime64[ns, {clock.tz.key}]")

    buckets = [getattr(_R, f"wait_b{i}") for i in range(len(WAIT_BUCKETS_MS) + 1)]
    wait = session.execute(
        select(func.sum(_R.queue_wait_ms_sum), func.sum(_R.results_count), *[func.sum(b) for b in buckets])
        .where(*in_range)
    ).one()
    wait_sum, wait_n = int(wait[0] or 0), int(wait[1] or 0)
    counts_by_bucket = [int(v or 0) for v in wait[2:]]

    oldest = session.execute(
        select(func.min(Photo.created_at)).where(
            Photo.organization_id == organization_id,
            Photo.status == "pending",
            or_(Photo.next_attempt_at.is_(None), Photo.next_attempt_at <= clock.now),
        )
    ).scalar_one_or_none()

    processed = _sum(facts.totals["last_hour"]).processed
    pending = facts.counts["pending"]
    paused = bool(facts.config and facts.config.paused)
    eta: timedelta | None
    if pending == 0:
        eta, note = timedelta(0), "The queue is empty."
    elif paused:
        eta, note = None, "Processing is paused; nothing drains until it is resumed."
    elif processed == 0:
        eta, note = None, "Nothing was processed in the last hour, so there is no rate to estimate from."
    else:
        eta = timedelta(hours=pending / processed)
        note = f"{pending:,} pending at the last hour's rate of {processed:,} processed per hour."
    return QueueMonitor(
        as_of=clock.now,
        counts=dict(facts.counts),
        throughput=throughput,
        avg_wait_ms=None if wait_n == 0 else wait_sum / wait_n,
        p95_wait=percentile_from_histogram(counts_by_bucket, WAIT_BUCKETS_MS, 0.95),
        wait_samples=sum(counts_by_bucket),
        oldest_due_pending_at=oldest,
        processed_last_hour=processed,
        drain_eta=eta,
        drain_note=note,
    )


def _build_cost(facts: _Facts) -> CostMonitor:
    clock = facts.clock
    today, month = facts.totals["today"], facts.totals["month"]
    providers = [p for p in _ordered(set(today) | set(month)) if month.get(p, _Totals()).cost_micros
                 or today.get(p, _Totals()).cost_micros]
    by_provider = pd.DataFrame(
        [(p, today.get(p, _Totals()).cost_micros, month.get(p, _Totals()).cost_micros) for p in providers],
        columns=["provider", "today_micros", "month_micros"],
    ).astype({"today_micros": "int64", "month_micros": "int64"})
    today_total, month_total = _sum(today).cost_micros, _sum(month).cost_micros
    month_days = (clock.next_month_start - clock.month_start).total_seconds() / 86400
    elapsed = (clock.now - clock.month_start).total_seconds() / 86400
    # Less than a day into the month, today's spend stands for one day rather than being blown up by
    # a tiny divisor.
    daily_average = round(month_total / max(elapsed, 1.0))
    projected = round(month_total + daily_average * max(month_days - max(elapsed, 1.0), 0.0))
    cfg = facts.config
    daily_budget = cfg.daily_budget_micros if cfg else None
    monthly_budget = cfg.monthly_budget_micros if cfg else None
    budgets = pd.DataFrame(
        [("today", today_total, daily_budget, today_total),
         ("month", month_total, monthly_budget, projected)],
        columns=["period", "spent_micros", "budget_micros", "projected_micros"],
    )
    return CostMonitor(
        as_of=clock.now, by_provider=by_provider, today_micros=today_total, month_micros=month_total,
        daily_budget_micros=daily_budget, monthly_budget_micros=monthly_budget,
        elapsed_days=elapsed, month_days=month_days, daily_average_micros=daily_average,
        projected_month_micros=projected, budgets=budgets,
    )


def _ordered(providers: Iterable[str]) -> list[str]:
    known = [p for p in PROVIDERS if p in set(providers)]
    return known + sorted(set(providers) - set(PROVIDERS))


def _build_providers(session: Session, organization_id: int, facts: _Facts) -> ProviderHealthReport:
    clock = facts.clock
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
    configured = set(session.execute(
        select(ProviderConfig.provider).where(ProviderConfig.organization_id == organization_id,
                                              ProviderConfig.enabled.is_(True))
    ).scalars())
    cfg = facts.config
    if cfg is not None:
        configured.add(cfg.active_provider)
        if cfg.fallback_provider:
            configured.add(cfg.fallback_provider)
    names = _ordered(configured | set(traffic)) or ["local"]

    report = []
    for provider in names:
        check = session.execute(
            select(AiProviderHealth.status, AiProviderHealth.last_check, AiProviderHealth.response_time_ms)
            .where(AiProviderHealth.provider_name == provider,
                   or_(AiProviderHealth.organization_id == organization_id,
                       AiProviderHealth.organization_id.is_(None)),
                   AiProviderHealth.last_check <= clock.now)
            .order_by(AiProviderHealth.last_check.desc())
            .limit(1)
        ).first()
        n, failed = traffic.get(provider, (0, 0))
        error_rate = _rate(failed, n)
        if check is not None and clock.now - check.last_check <= HEALTH_CHECK_FRESH:
            status, source = check.status, "check"
        elif n:
            assert error_rate is not None
            status = "down" if error_rate >= DOWN_ERROR_RATE else (
                "degraded" if error_rate >= DEGRADED_ERROR_RATE else "healthy")
            source = "traffic"
        else:
            status, source = "unknown", "none"
        p50, p95 = latency.get(provider, (None, None))
        report.append(ProviderHealth(
            provider=provider, status=status, status_source=source, results=n, failed=failed,
            error_rate=error_rate, p50_latency_ms=p50, p95_latency_ms=p95,
            last_check=check.last_check if check else None,
            last_check_status=check.status if check else None,
            last_check_response_ms=check.response_time_ms if check else None,
        ))
    return ProviderHealthReport(as_of=clock.now, window=HEALTH_WINDOW, providers=tuple(report))


# ------------------------------------------------------------------------------------------- public

_STATUS_WINDOWS = ("today", "yesterday", "month", "last_hour", "last_hour_yesterday")


def status_cards(*, organization_id: int, now: datetime | None = None) -> StatusCards:
    """The headline cards: processed, queue, confidence, error rate, spend vs budgets, paused flag."""
    with org_session(organization_id) as session:
        facts = _facts(session, organization_id, now, _STATUS_WINDOWS, counts=True)
        return _build_status(facts)


def queue_monitor(*, organization_id: int, now: datetime | None = None) -> QueueMonitor:
    """Queue counts, hourly throughput (24 h), wait average and p95, oldest due photo, drain estimate."""
    with org_session(organization_id) as session:
        facts = _facts(session, organization_id, now, ("last_hour",), counts=True)
        return _build_queue(session, organization_id, facts)


def cost_monitor(*, organization_id: int, now: datetime | None = None) -> CostMonitor:
    """Spend today and this month by provider, budget bars data, projected month-end spend."""
    with org_session(organization_id) as session:
        facts = _facts(session, organization_id, now, ("today", "month"), counts=False)
        return _build_cost(facts)


def provider_health(*, organization_id: int, now: datetime | None = None) -> ProviderHealthReport:
    """Per provider: status, p50/p95 latency and error rate over the last 15 minutes, last check."""
    with org_session(organization_id) as session:
        facts = _Facts(clock=_clock(session, organization_id, now),
                       config=session.get(PipelineConfig, organization_id))
        return _build_providers(session, organization_id, facts)


def live_snapshot(*, organization_id: int, now: datetime | None = None,
                  use_cache: bool = True) -> LiveSnapshot:
    """All four Live Status parts from one session; cached for `live_cache_ttl_seconds` when `now` is None."""

    def compute() -> LiveSnapshot:
        with org_session(organization_id) as session:
            facts = _facts(session, organization_id, now, _STATUS_WINDOWS, counts=True)
            return LiveSnapshot(
                status=_build_status(facts),
                queue=_build_queue(session, organization_id, facts),
                cost=_build_cost(facts),
                providers=_build_providers(session, organization_id, facts),
            )

    if not use_cache or now is not None:
        return compute()
    return cache.cached((LIVE_CACHE_PREFIX, organization_id, "snapshot"),
                        get_settings().live_cache_ttl_seconds, compute)


def photo_status_counts(*, organization_id: int, use_cache: bool = True) -> dict[str, int]:
    """Photos per status, all five including completed: a full count, cached for a minute."""

    def compute() -> dict[str, int]:
        with org_session(organization_id) as session:
            return _queue_counts(session, organization_id, PHOTO_STATUSES)

    if not use_cache:
        return compute()
    return cache.cached((LIVE_CACHE_PREFIX, organization_id, "status_counts"), COMPLETED_COUNT_TTL, compute)


def invalidate_live_status(*, organization_id: int) -> None:
    """Drop the cached snapshot after an action (pause, retry, upload) so the next refresh shows it."""
    cache.invalidate(f"{LIVE_CACHE_PREFIX}:{organization_id}:")
