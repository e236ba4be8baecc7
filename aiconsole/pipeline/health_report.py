"""Provider health as people see it: each provider's status and why, its last 15 minutes of traffic, its last
check, and its circuit.

A status is one of `STATUSES`, a contract with the Live Status page; `status_reason` says why in words:

- `disabled`: the provider is switched off in Providers (whatever its traffic or checks said before);
- `not_configured`: it needs credentials it does not have (`providers.registry` capabilities: it needs a key,
  none is stored, its endpoint is the provider's own and the organization is not emulated, or its stored key
  may not go to the saved endpoint) and nothing shows it working anyway: no result in the window and no
  fresh check from this organization's own calls (the workers may hold environment credentials, e.g.
  GEMINI_API_KEY; when their calls answer, the traffic decides);
- otherwise `healthy` / `degraded` / `down` from two pictures, and the WORSE of them wins:
  the traffic (the share of the window's results that failed for the provider's sake: server errors,
  timeouts, 429s, bad keys, unreachable hosts, unusable answers; a bad photo is not the provider's fault),
  and the newest fresh check (an `ai_provider_health` row at most HEALTH_CHECK_FRESH old: a worker's call
  summary, a probe, a circuit change, a health check, a platform-wide sample). So a check that says
  healthy never hides a window of failing calls, and a failing probe or an open circuit is never hidden by
  older successes; on a tie the check is named the source. A check that recorded no health ('unknown',
  e.g. a disabled provider's row) is no check;
- `unknown`: neither picture exists.

The circuit is the organization's shared one (`aiconsole.pipeline.circuits`, written by the workers whose
breakers change it): closed, open until its next probe, or half-open while a probe is due or out; its failure
rate is the one that opened it, or while closed the share of the workers' calls in the window that failed
for the provider's sake. Live Status shows this report; the operator's health check records it
(`record_check`), without calling any provider.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from aiconsole.pipeline import circuits
from aiconsole.pipeline.routing import PROVIDER_FAULT_KINDS
from aiconsole.platform import formatting as fmt
from aiconsole.platform.clock import Clock, org_clock
from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import PROVIDERS, AiProcessingResult, AiProviderHealth, PipelineConfig, ProviderConfig
from aiconsole.platform.db.sql import grouped_percentiles
from aiconsole.platform.settings import get_settings
from aiconsole.providers.emulation import emulator_url, is_demo_org
from aiconsole.providers.endpoints import endpoint_refusal
from aiconsole.providers.registry import DEFAULT_PROVIDER, PROVIDER_NAMES, capabilities

STATUSES = ("healthy", "degraded", "down", "disabled", "not_configured", "unknown")
HEALTH_WINDOW = timedelta(minutes=15)
# A health-check row older than this no longer counts; the traffic alone decides.
HEALTH_CHECK_FRESH = timedelta(minutes=30)
# A provider's status from the share of its calls that failed for its own sake.
DOWN_ERROR_RATE = 0.5
DEGRADED_ERROR_RATE = 0.1
# Check rows that come from this organization's own calls of the provider (evidence that it answers).
CALL_SOURCES = frozenset({"worker", "probe", "breaker"})
NOT_CONFIGURED_KEY = "no API key saved in Providers"
DISABLED_REASON = "disabled in Providers"
_SEVERITY = {"healthy": 0, "degraded": 1, "down": 2}
_REASON_CHARS = 300

_A = AiProcessingResult
_H = AiProviderHealth


def health_status(*, error_rate: float, circuit: str) -> str:
    """healthy / degraded / down from an error rate and the circuit's state."""
    if circuit == "open" or error_rate >= DOWN_ERROR_RATE:
        return "down"
    return "degraded" if error_rate >= DEGRADED_ERROR_RATE else "healthy"


@dataclass(frozen=True)
class Traffic:
    """A provider's results in the window: how many, how many failed, how many of those for its own sake."""

    results: int
    failed: int
    faults: int
    last_error: str | None = None  # the newest failure's message (a provider fault's when there is one)


@dataclass(frozen=True)
class Check:
    """The newest health-check row of a provider: what it said, when, from where."""

    status: str  # healthy, degraded or down
    at: datetime
    source: str | None = None  # worker, probe, breaker, health check; None: a platform-wide or seeded sample
    error_kind: str | None = None
    summary: str | None = None  # e.g. a worker's "12 of 12 calls failed: ..."
    from_calls: bool = False  # written from this organization's own calls of the provider


@dataclass(frozen=True)
class Verdict:
    """A provider's status, which picture decided it (traffic, check, config or none), and why in words."""

    status: str
    source: str
    reason: str


def _traffic_text(t: Traffic) -> str:
    if t.faults:
        text = f"{t.faults:,} of {fmt.plural(t.results, 'call')} failed in 15 min"
        return f"{text}: {t.last_error}" if t.last_error else text
    if t.failed:
        return (f"{fmt.plural(t.results, 'call')} in 15 min; {t.failed:,} failed for the photo's own sake, "
                "none for the provider's")
    return f"{fmt.plural(t.results, 'call')} in 15 min, none failed"


def _check_text(c: Check, now: datetime) -> str:
    where = f" ({c.source})" if c.source and c.source not in ("health check", circuits.SOURCE) else ""
    if c.summary:
        return f"last check {fmt.ago(c.at, now)}{where}: {c.summary}"
    kind = f" ({c.error_kind})" if c.error_kind else ""
    return f"last check {fmt.ago(c.at, now)}{where}: {c.status}{kind}"


def provider_status(*, now: datetime, disabled: bool = False, missing: str | None = None,
                    traffic: Traffic | None = None, check: Check | None = None) -> Verdict:
    """A provider's status by the precedence in the module docstring (`missing`: why it is not configured)."""
    if disabled:
        return Verdict("disabled", "config", DISABLED_REASON)
    if traffic is not None and traffic.results == 0:
        traffic = None
    if check is not None and (check.status not in _SEVERITY or now - check.at > HEALTH_CHECK_FRESH):
        check = None
    if missing is not None and traffic is None and (check is None or not check.from_calls):
        return Verdict("not_configured", "config", missing)
    by_traffic = None if traffic is None else health_status(error_rate=traffic.faults / traffic.results,
                                                            circuit="closed")
    if check is not None and (by_traffic is None or _SEVERITY[check.status] >= _SEVERITY[by_traffic]):
        other = "" if traffic is None else f"; {_traffic_text(traffic)}"
        return Verdict(check.status, "check", _check_text(check, now) + other)
    if traffic is not None and by_traffic is not None:
        other = "" if check is None else f"; {_check_text(check, now)}"
        return Verdict(by_traffic, "traffic", _traffic_text(traffic) + other)
    return Verdict("unknown", "none", "no calls in the last 15 min and no check in the last 30 min")


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
    """One provider's health: status and why, where it came from, and its last 15 minutes of traffic."""

    provider: str
    status: str  # one of STATUSES
    status_source: str  # "traffic", "check" (a fresh ai_provider_health row), "config", or "none"
    results: int
    failed: int
    error_rate: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    last_check: datetime | None
    last_check_status: str | None
    last_check_response_ms: int | None
    circuit: CircuitView
    status_reason: str = ""  # what people should read beside the status, e.g. "3 of 3 calls failed in 15 min: ..."
    last_error: str | None = None  # the window's newest failure message


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
             clock: Clock) -> tuple[dict[str, Traffic], dict[Any, tuple[float, ...]]]:
    """Per provider over the health window: its Traffic, and (p50, p95) response time in ms."""
    start = clock.now - HEALTH_WINDOW
    in_window = (_A.organization_id == organization_id, _A.created_at >= start, _A.created_at < clock.now)
    # A failure of no known kind counts against the provider, as routing.is_provider_fault counts it.
    fault = and_(_A.status == "failed",
                 or_(_A.error_kind.is_(None), _A.error_kind.in_(sorted(PROVIDER_FAULT_KINDS))))
    counts = session.execute(
        select(_A.ai_provider, func.count(), func.sum(case((_A.status == "failed", 1), else_=0)),
               func.sum(case((fault, 1), else_=0)))
        .where(*in_window)
        .group_by(_A.ai_provider)
    ).all()
    traffic = {}
    for p, n, failed, faults in counts:
        last = None
        if failed:  # the newest failure, a provider fault's first (a handful of providers: one indexed read each)
            last = session.scalar(
                select(_A.error).where(*in_window, _A.ai_provider == p, _A.status == "failed")
                .order_by(case((fault, 0), else_=1), _A.created_at.desc(), _A.id.desc()).limit(1))
        traffic[p] = Traffic(int(n), int(failed or 0), int(faults or 0),
                             None if last is None else str(last)[:_REASON_CHARS])
    latency = grouped_percentiles(
        session, value=_A.provider_response_time_ms, group=_A.ai_provider,
        where=[*in_window, _A.provider_response_time_ms > 0], quantiles=(0.5, 0.95),
    )
    return traffic, latency


def _configs(session: Session, organization_id: int) -> dict[str, Any]:
    """The organization's provider_configs rows by provider: enabled, key stored, endpoint."""
    return {r.provider: r for r in session.execute(
        select(ProviderConfig.provider, ProviderConfig.enabled, ProviderConfig.endpoint,
               ProviderConfig.encrypted_secret.is_not(None).label("has_key"))
        .where(ProviderConfig.organization_id == organization_id))}


def _used(configs: dict[str, Any], config: PipelineConfig | None, with_traffic: Iterable[str]) -> list[str]:
    """The providers with settings (a disabled one says so rather than vanishing when its traffic stops),
    configured as active or fallback, or with traffic (the default one when none)."""
    used = set(configs)
    if config is not None:
        used.add(config.active_provider)
        if config.fallback_provider:
            used.add(config.fallback_provider)
    return ordered_providers(used | set(with_traffic)) or [DEFAULT_PROVIDER]


def _missing(provider: str, row: Any, emulator: str | None) -> str | None:
    """Why the provider cannot be called with what it has (None: it can, as far as the console can tell)."""
    if provider not in PROVIDER_NAMES:
        return None
    caps = capabilities(provider)
    if not caps.needs_key:
        return None
    endpoint = row.endpoint if row is not None else None
    if row is not None and row.has_key:
        refusal = endpoint_refusal(provider, endpoint or None, settings=get_settings(), emulator=emulator)
        return None if refusal is None else f"the key is not sent: {refusal}"[:_REASON_CHARS]
    if emulator is not None and caps.emulatable:
        return None
    if endpoint and endpoint.rstrip("/") != (caps.default_endpoint or ""):
        return None  # a proxy or an emulator of its own may need no key
    return NOT_CONFIGURED_KEY


def _latest_check(session: Session, organization_id: int, provider: str, now: datetime) -> Any:
    """The provider's newest health-check row up to `now` that says something (this organization's or global)."""
    return session.execute(
        select(_H.status, _H.last_check, _H.response_time_ms, _H.organization_id, _H.error_details)
        .where(_H.provider_name == provider, _H.status != "unknown",
               or_(_H.organization_id == organization_id, _H.organization_id.is_(None)),
               _H.last_check <= now)
        .order_by(_H.last_check.desc(), _H.id.desc())
        .limit(1)
    ).first()


def _as_check(row: Any) -> Check | None:
    if row is None:
        return None
    details = row.error_details if isinstance(row.error_details, dict) else {}
    source = details.get("source")
    summary = None
    if details.get("calls") and source == "worker":
        calls, failures = int(details["calls"]), int(details.get("failures") or 0)
        summary = (f"{failures:,} of {fmt.plural(calls, 'call')} failed" if failures
                   else f"{fmt.plural(calls, 'call')}, none failed")
        if failures and details.get("last_error"):
            summary += f": {str(details['last_error'])[:_REASON_CHARS]}"
    if source == circuits.SOURCE:
        summary = f"{row.status} (circuit {details.get('circuit', 'closed')})"
    if source == "worker" and details.get("worker"):
        source = f"worker {details['worker']}"
    return Check(status=row.status, at=row.last_check, source=source, error_kind=details.get("error_kind"),
                 summary=summary,
                 from_calls=row.organization_id is not None and details.get("source") in CALL_SOURCES)


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
    configs = _configs(session, organization_id)
    emulator = emulator_url(is_demo=is_demo_org(session, organization_id=organization_id))
    report = []
    for provider in _used(configs, config, traffic):
        row = _latest_check(session, organization_id, provider, now)
        t = traffic.get(provider, Traffic(0, 0, 0))
        cfg = configs.get(provider)
        verdict = provider_status(now=now, disabled=cfg is not None and not cfg.enabled,
                                  missing=_missing(provider, cfg, emulator), traffic=t, check=_as_check(row))
        p50, p95 = latency.get(provider, (None, None))
        report.append(ProviderHealth(
            provider=provider, status=verdict.status, status_source=verdict.source, results=t.results,
            failed=t.failed, error_rate=None if t.results == 0 else t.failed / t.results,
            p50_latency_ms=p50, p95_latency_ms=p95,
            last_check=row.last_check if row else None,
            last_check_status=row.status if row else None,
            last_check_response_ms=row.response_time_ms if row else None,
            circuit=circuit_view(provider, records.get(provider), now=now, calls=faults.get(provider)),
            status_reason=verdict.reason, last_error=t.last_error,
        ))
    return ProviderHealthReport(as_of=now, window=HEALTH_WINDOW, providers=tuple(report))


def record_check(session: Session, *, organization_id: int, report: ProviderHealthReport,
                 now: datetime) -> list[AiProviderHealth]:
    """The health check's rows, one per provider of `report`, added to the caller's transaction.

    The status column takes healthy, degraded, down or unknown; a disabled or not configured provider is
    recorded as 'unknown' (nothing was checked) with its state and reason in error_details, so no later
    report reads it as a check. No provider is called.
    """
    rows = []
    for p in report.providers:
        rows.append(AiProviderHealth(
            organization_id=organization_id, provider_name=p.provider,
            status=p.status if p.status in _SEVERITY else "unknown",
            response_time_ms=None if p.p50_latency_ms is None else round(p.p50_latency_ms),
            error_rate=p.error_rate, last_check=now,
            error_details={"source": "health check", "state": p.status, "reason": p.status_reason,
                           "results_15m": p.results, "failed_15m": p.failed}))
    session.add_all(rows)
    session.flush()
    return rows


def provider_health(*, organization_id: int, now: datetime | None = None) -> ProviderHealthReport:
    """Per provider: status, p50/p95 latency and error rate over the last 15 minutes, last check."""
    with org_session(organization_id) as session:
        return health_report(session, organization_id=organization_id,
                             clock=org_clock(session, organization_id=organization_id, now=now),
                             config=session.get(PipelineConfig, organization_id))
