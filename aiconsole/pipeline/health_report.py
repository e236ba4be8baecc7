"""Provider health as people see it: each provider's status, its last 15 minutes of traffic, its last check,
and its circuit.

A fresh health-check row (at most HEALTH_CHECK_FRESH old) decides a provider's status; without one, the
share of its recent results that failed does (`health_status`, the same thresholds the worker's own health
rows use). The circuit is the organization's shared one (`aiconsole.pipeline.circuits`, written by the
workers whose breakers change it): closed, open until its next probe, or half-open while a probe is due or
out; its failure rate is the one that opened it, or while closed the share of the workers' calls in the
window that failed for the provider's sake. Live Status shows this report; the operator's health check
records it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from aiconsole.pipeline import circuits
from aiconsole.platform.clock import Clock, org_clock
from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import PROVIDERS, AiProcessingResult, AiProviderHealth, PipelineConfig, ProviderConfig
from aiconsole.platform.db.sql import grouped_percentiles
from aiconsole.providers.registry import DEFAULT_PROVIDER

HEALTH_WINDOW = timedelta(minutes=15)
# A health-check row older than this no longer decides a provider's status; its traffic does.
HEALTH_CHECK_FRESH = timedelta(minutes=30)
# A provider's status from the share of its calls that failed for its own sake.
DOWN_ERROR_RATE = 0.5
DEGRADED_ERROR_RATE = 0.1

_A = AiProcessingResult


def health_status(*, error_rate: float, circuit: str) -> str:
    """healthy / degraded / down from an error rate and the circuit's state."""
    if circuit == "open" or error_rate >= DOWN_ERROR_RATE:
        return "down"
    return "degraded" if error_rate >= DEGRADED_ERROR_RATE else "healthy"


@dataclass(frozen=True)
class CircuitView:
    """A provider's circuit for the organization at the report's time."""

    provider: str
    state: str  # closed, open or half_open
    failure_rate: float | None  # open: of the window that opened it; closed: of the workers' calls in the window
    calls: int | None  # the calls that rate is of (None: not known)
    next_probe_at: datetime | None  # open: when a worker may probe next
    probing: str | None  # half_open: the worker whose probe is out (None: the probe is due)
    since: datetime | None  # when the circuit last changed (None: not within circuits.LOOKBACK)
    level: int  # consecutive opens without a real recovery: the open period is base x 2^level, capped


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
    circuit: CircuitView


@dataclass(frozen=True)
class ProviderHealthReport:
    """Health of every provider this organization uses."""

    as_of: datetime
    window: timedelta
    providers: tuple[ProviderHealth, ...]


def ordered_providers(providers: Iterable[str]) -> list[str]:
    """The known providers in their fixed order, then any others alphabetically."""
    known = [p for p in PROVIDERS if p in set(providers)]
    return known + sorted(set(providers) - set(PROVIDERS))


def _traffic(session: Session, organization_id: int,
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


def _used(session: Session, organization_id: int, config: PipelineConfig | None,
          with_traffic: Iterable[str]) -> list[str]:
    """The providers enabled, configured as active or fallback, or with traffic (the default one when none)."""
    configured = set(session.execute(
        select(ProviderConfig.provider).where(ProviderConfig.organization_id == organization_id,
                                              ProviderConfig.enabled.is_(True))
    ).scalars())
    if config is not None:
        configured.add(config.active_provider)
        if config.fallback_provider:
            configured.add(config.fallback_provider)
    return ordered_providers(configured | set(with_traffic)) or [DEFAULT_PROVIDER]


def _latest_check(session: Session, organization_id: int, provider: str, now: datetime) -> Any:
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


def _status(check: Any, *, results: int, error_rate: float | None, now: datetime) -> tuple[str, str]:
    """(status, source): a fresh check decides ("check"), else the traffic's error rate ("traffic")."""
    if check is not None and now - check.last_check <= HEALTH_CHECK_FRESH:
        return check.status, "check"
    if results:
        assert error_rate is not None
        return health_status(error_rate=error_rate, circuit="closed"), "traffic"
    return "unknown", "none"


def _call_faults(session: Session, organization_id: int, now: datetime) -> dict[str, tuple[int, int]]:
    """Per provider: (calls, provider faults) the workers reported over the health window."""
    sums: dict[str, tuple[int, int]] = {}
    for provider, details in session.execute(
            select(AiProviderHealth.provider_name, AiProviderHealth.error_details)
            .where(AiProviderHealth.organization_id == organization_id,
                   AiProviderHealth.last_check > now - HEALTH_WINDOW, AiProviderHealth.last_check <= now,
                   AiProviderHealth.error_details["source"].as_string() == "worker")):
        calls, faults = sums.get(provider, (0, 0))
        sums[provider] = (calls + int(details.get("calls") or 0), faults + int(details.get("failures") or 0))
    return sums


def circuit_view(provider: str, record: circuits.Circuit | None, *, now: datetime,
                 calls: tuple[int, int] | None = None) -> CircuitView:
    """How a provider's circuit reads at `now` from its newest record and (while closed) its recent calls."""
    state = record.state_at(now) if record is not None else "closed"
    if state == "closed":
        n, faults = calls or (0, 0)
        rate, count = (faults / n if n else None), n
    else:
        assert record is not None
        rate, count = record.failure_rate, None
    if record is None:
        return CircuitView(provider=provider, state=state, failure_rate=rate, calls=count, next_probe_at=None,
                           probing=None, since=None, level=0)
    out = record.state == "half_open" and not record.probe_due(now)  # a claim that lapsed: the probe is due
    return CircuitView(provider=provider, state=state, failure_rate=rate, calls=count,
                       next_probe_at=record.next_probe_at if state == "open" else None,
                       probing=record.worker if out else None, since=record.at, level=record.level)


def health_report(session: Session, *, organization_id: int, clock: Clock, config: PipelineConfig | None,
                  records: dict[str, circuits.Circuit] | None = None) -> ProviderHealthReport:
    """The report at `clock.now` in the caller's session (`config`: the organization's pipeline_config row;
    `records`: its circuits, when the caller read them already)."""
    now = clock.now
    traffic, latency = _traffic(session, organization_id, clock)
    if records is None:
        records = circuits.latest(session, organization_id, now=now)
    faults = _call_faults(session, organization_id, now)
    report = []
    for provider in _used(session, organization_id, config, traffic):
        check = _latest_check(session, organization_id, provider, now)
        n, failed = traffic.get(provider, (0, 0))
        error_rate = None if n == 0 else failed / n
        status, source = _status(check, results=n, error_rate=error_rate, now=now)
        p50, p95 = latency.get(provider, (None, None))
        report.append(ProviderHealth(
            provider=provider, status=status, status_source=source, results=n, failed=failed,
            error_rate=error_rate, p50_latency_ms=p50, p95_latency_ms=p95,
            last_check=check.last_check if check else None,
            last_check_status=check.status if check else None,
            last_check_response_ms=check.response_time_ms if check else None,
            circuit=circuit_view(provider, records.get(provider), now=now, calls=faults.get(provider)),
        ))
    return ProviderHealthReport(as_of=now, window=HEALTH_WINDOW, providers=tuple(report))


def provider_health(*, organization_id: int, now: datetime | None = None) -> ProviderHealthReport:
    """Per provider: status, p50/p95 latency and error rate over the last 15 minutes, last check."""
    with org_session(organization_id) as session:
        return health_report(session, organization_id=organization_id,
                             clock=org_clock(session, organization_id=organization_id, now=now),
                             config=session.get(PipelineConfig, organization_id))
