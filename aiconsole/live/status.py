"""Live Status data: status cards, queue monitor, cost monitor and provider health for one organization.

Every function takes keyword-only `organization_id` and `now` (aware; default: the current time, so
tests can pin it) and runs in `org_session(organization_id)`. "Today" and "this month" are calendar
periods in the organization's time zone.

Where the figures come from:
- history (today, yesterday, this month, the last 24 h) from `processing_rollups_hourly`, with the
  partial hours read from `ai_processing_results`, so every window is exact to the second
  (`aiconsole.pipeline.rollups.window_totals`, the figures the budget guard reads too);
- the queue from `photos` (its status indexes) (`aiconsole.live.queue_stats`); provider health from the
  last 15 minutes of results and the latest health check (`aiconsole.pipeline.health_report`);
- each provider's circuit (and so the next probe of a circuit pause) from the organization's shared circuit
  rows, which the workers write (`aiconsole.pipeline.circuits`): breakers live in the workers' memory, this
  runs in the console.

"Processed" means a result with tags: status completed or needs_review. Failed results are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import pandas as pd
from sqlalchemy.orm import Session

from aiconsole.live import queue_stats as live_queue
from aiconsole.live import spend
from aiconsole.pipeline import circuits, failures
from aiconsole.pipeline.config_row import CIRCUIT_OPEN
from aiconsole.pipeline.health_report import (
    CircuitView,
    ProviderHealthReport,
    circuit_view,
    health_report,
    ordered_providers,
)
from aiconsole.pipeline.rollups import Totals, sum_totals, window_totals
from aiconsole.platform import cache
from aiconsole.platform.clock import Clock, Window, named_windows, org_clock
from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import PHOTO_STATUSES, PipelineConfig
from aiconsole.platform.db.sql import HistogramPercentile
from aiconsole.platform.settings import get_settings

N = TypeVar("N", int, float)

COMPLETED_COUNT_TTL = 60.0


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
    pause_kind: str | None = None
    # A circuit pause: the circuit that paused it, with its next probe (None for other pauses).
    paused_circuit: CircuitView | None = None
    stuck: int = 0  # photos in processing whose lease expired (what Requeue stuck would move)

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
    `daily`: day (local date), provider, cost_micros over the last `spend.SPEND_DAYS` days, today last.
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
    daily: pd.DataFrame


@dataclass(frozen=True, eq=False)
class LiveSnapshot:
    """Everything one Live Status refresh shows, from one database session (the failed groups from a second
    one in the same refresh, read only when photos failed)."""

    status: StatusCards
    queue: QueueMonitor
    cost: CostMonitor
    providers: ProviderHealthReport
    failures: tuple[failures.FailedGroup, ...] = ()  # newest group first


def _fraction(part: int, whole: int | None) -> float | None:
    return None if not whole else part / whole


# ------------------------------------------------------------------------------------------ fetchers


@dataclass
class _Facts:
    """What one refresh reads once and the four parts share."""

    clock: Clock
    config: PipelineConfig | None
    totals: dict[str, dict[str, Totals]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stuck: int = 0
    circuit_rows: dict[str, circuits.Circuit] | None = None  # read when a part needs them


def _facts(session: Session, organization_id: int, now: datetime | None, windows: Iterable[str],
           counts: bool, days: bool = False) -> _Facts:
    clock = org_clock(session, organization_id=organization_id, now=now)
    config = session.get(PipelineConfig, organization_id)
    facts = _Facts(clock=clock, config=config)
    wanted: dict[str, Window] = named_windows(clock, windows)
    if days:
        wanted |= spend.day_windows(clock)
    facts.totals = window_totals(session, organization_id=organization_id, windows=wanted)
    if counts:
        facts.counts = live_queue.queue_counts(session, organization_id=organization_id)
        facts.stuck = live_queue.stuck_count(session, organization_id=organization_id, now=clock.now)
    if config is not None and config.paused and config.pause_kind == CIRCUIT_OPEN:
        facts.circuit_rows = circuits.latest(session, organization_id, now=clock.now)
    return facts


def _paused_circuit(facts: _Facts) -> CircuitView | None:
    """The circuit a circuit pause waits on: the active provider's if it is not closed, else any that is not."""
    cfg = facts.config
    if cfg is None or not cfg.paused or cfg.pause_kind != CIRCUIT_OPEN:
        return None
    records = facts.circuit_rows or {}
    views = [circuit_view(p, records[p], now=facts.clock.now)
             for p in [cfg.active_provider, *sorted(set(records) - {cfg.active_provider})] if p in records]
    return next((v for v in views if v.state != "closed"), None)


# ------------------------------------------------------------------------------------------ builders


def _build_status(facts: _Facts) -> StatusCards:
    t = facts.totals
    today, yday = sum_totals(t["today"]), sum_totals(t["yesterday"])
    hour, hour_yday = sum_totals(t["last_hour"]), sum_totals(t["last_hour_yesterday"])
    month = sum_totals(t["month"])
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
        avg_confidence_today=Compared(today.avg_confidence, yday.avg_confidence),
        error_rate_last_hour=Compared(hour.error_rate, hour_yday.error_rate),
        results_last_hour=hour.results,
        spend_today_micros=Compared(today.cost_micros, yday.cost_micros),
        daily_budget_micros=cfg.daily_budget_micros if cfg else None,
        spend_month_micros=month.cost_micros,
        monthly_budget_micros=cfg.monthly_budget_micros if cfg else None,
        paused=bool(cfg and cfg.paused),
        pause_reason=cfg.pause_reason if cfg and cfg.paused else None,
        paused_at=cfg.paused_at if cfg and cfg.paused else None,
        pause_kind=cfg.pause_kind if cfg and cfg.paused else None,
        paused_circuit=_paused_circuit(facts),
        stuck=facts.stuck,
    )


def _build_queue(session: Session, organization_id: int, facts: _Facts) -> QueueMonitor:
    clock, org = facts.clock, organization_id
    throughput = live_queue.hourly_throughput(session, organization_id=org, clock=clock)
    avg_wait, p95_wait, wait_samples = live_queue.queue_waits(session, organization_id=org, clock=clock)
    oldest = live_queue.oldest_due_pending(session, organization_id=org, now=clock.now)
    processed = sum_totals(facts.totals["last_hour"]).processed
    eta, note = live_queue.drain_estimate(pending=facts.counts["pending"], processed_last_hour=processed,
                                          paused=bool(facts.config and facts.config.paused))
    return QueueMonitor(
        as_of=clock.now,
        counts=dict(facts.counts),
        throughput=throughput,
        avg_wait_ms=avg_wait,
        p95_wait=p95_wait,
        wait_samples=wait_samples,
        oldest_due_pending_at=oldest,
        processed_last_hour=processed,
        drain_eta=eta,
        drain_note=note,
    )


def _build_cost(facts: _Facts) -> CostMonitor:
    clock = facts.clock
    today, month = facts.totals["today"], facts.totals["month"]
    providers = [p for p in ordered_providers(set(today) | set(month))
                 if month.get(p, Totals()).cost_micros or today.get(p, Totals()).cost_micros]
    by_provider = pd.DataFrame(
        [(p, today.get(p, Totals()).cost_micros, month.get(p, Totals()).cost_micros) for p in providers],
        columns=["provider", "today_micros", "month_micros"],
    ).astype({"today_micros": "int64", "month_micros": "int64"})
    today_total, month_total = sum_totals(today).cost_micros, sum_totals(month).cost_micros
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
        projected_month_micros=projected, budgets=budgets, daily=spend.daily_spend(facts.totals, clock),
    )


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
        facts = _facts(session, organization_id, now, ("today", "month"), counts=False, days=True)
        return _build_cost(facts)


def live_snapshot(*, organization_id: int, now: datetime | None = None,
                  use_cache: bool = True) -> LiveSnapshot:
    """All four Live Status parts from one session; cached for `live_cache_ttl_seconds` when `now` is None."""

    def compute() -> LiveSnapshot:
        with org_session(organization_id) as session:
            facts = _facts(session, organization_id, now, _STATUS_WINDOWS, counts=True, days=True)
            snap = LiveSnapshot(
                status=_build_status(facts),
                queue=_build_queue(session, organization_id, facts),
                cost=_build_cost(facts),
                providers=health_report(session, organization_id=organization_id, clock=facts.clock,
                                        config=facts.config, records=facts.circuit_rows),
            )
        if not snap.status.failed:
            return snap
        return replace(snap, failures=tuple(failures.failed_groups(organization_id=organization_id)))

    if not use_cache or now is not None:
        return compute()
    return cache.cached(cache.live_key(organization_id, "snapshot"),
                        get_settings().live_cache_ttl_seconds, compute)


def photo_status_counts(*, organization_id: int, use_cache: bool = True) -> dict[str, int]:
    """Photos per status, all five including completed: a full count, cached for a minute."""

    def compute() -> dict[str, int]:
        with org_session(organization_id) as session:
            return live_queue.queue_counts(session, organization_id=organization_id, statuses=PHOTO_STATUSES)

    if not use_cache:
        return compute()
    return cache.cached(cache.live_key(organization_id, "status_counts"), COMPLETED_COUNT_TTL, compute)
