"""Routing a photo to a provider: shared rate limits, circuit breakers, fallback, and the budget guard.

- `RateLimiter` (from `aiconsole.rate_limit`): one provider's requests per minute, shared by every worker.
- `CircuitBreaker`: per provider, per process; opens on an error rate over a window, half-opens after
  a pause to let one probe through, closes when the probe succeeds.
- `route()`: the primary provider, or the fallback while the primary's breaker is open.
- `BudgetGuard`: today's / this month's spend (organization time zone, exact to the second, the same
  figures Live Status shows) against the budgets; pauses the organization with the reason, audited.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from aiconsole.live.windows import named_windows, org_clock, sum_totals, window_totals
from aiconsole.pipeline.rate_limit import RateLimiter as RateLimiter
from aiconsole.pipeline.rate_limit import rate_window as rate_window
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.cache import invalidate_live
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AiconsoleError, ProviderError, ValidationFailed
from aiconsole.platform.money import format_usd

log = logging.getLogger(__name__)

# Pause reasons the worker sets on its own; it may lift these (and only these) again.
BUDGET_REASON = re.compile(r"^(Daily|Monthly) budget of \$[0-9,.]+ reached")
CIRCUIT_REASON_PREFIX = "Provider circuit open:"
# Error kinds that say something about the provider's health (a blocked photo or a bad request does not).
PROVIDER_FAULT_KINDS = frozenset({"rate_limited", "server_error", "timeout", "connection", "auth", "malformed"})


# ------------------------------------------------------------------------------------ circuit breaker


class CircuitBreaker:
    """Closed -> open on `error_rate` over `window_s` (at least `min_calls`); half-open after `open_s`."""

    def __init__(self, name: str, error_rate: float = 0.5, window_s: float = 30, min_calls: int = 10,
                 open_s: float = 30, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < error_rate <= 1:
            raise ValidationFailed(f"A breaker error rate of {error_rate} is out of range.",
                                   hint="Use a fraction above 0 and at most 1, e.g. 0.5.")
        self.name = name
        self.error_rate = error_rate
        self.window_s = window_s
        self.min_calls = max(1, min_calls)
        self.open_s = open_s
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._state = "closed"
        self._opened_at = 0.0
        self._probe_out = False
        self.last_error_rate = 0.0

    @property
    def state(self) -> str:
        """closed, open or half_open (an open breaker whose pause is over reads as half_open)."""
        with self._lock:
            self._advance()
            return self._state

    def _advance(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self.open_s:
            self._state = "half_open"
            self._probe_out = False

    def reopens_in_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 unless open)."""
        with self._lock:
            self._advance()
            return max(0.0, self._opened_at + self.open_s - self._clock()) if self._state == "open" else 0.0

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only one probe at a time."""
        with self._lock:
            self._advance()
            if self._state == "closed":
                return True
            if self._state == "half_open" and not self._probe_out:
                self._probe_out = True
                return True
            return False

    def release(self) -> None:
        """A call `allow()` let through never went out (e.g. its image was unreadable): free the probe slot."""
        with self._lock:
            if self._state == "half_open":
                self._probe_out = False

    def record(self, success: bool) -> None:
        """Count one call's outcome (a provider fault is a failure; a refused photo is not)."""
        with self._lock:
            now = self._clock()
            self._advance()
            if self._state == "half_open":
                self._probe_out = False
                if success:
                    self._state = "closed"
                    self._calls.clear()
                    self._failures = 0
                else:
                    self._open(now)
                return
            if self._state == "open":
                return  # a call that went out before the breaker opened
            # Running counts: at thousands of calls a second the window holds tens of thousands of them.
            self._calls.append((now, success))
            self._failures += not success
            while self._calls and self._calls[0][0] < now - self.window_s:
                self._failures -= not self._calls.popleft()[1]
            self.last_error_rate = self._failures / len(self._calls)
            if len(self._calls) >= self.min_calls and self.last_error_rate >= self.error_rate:
                self._open(now)

    def _open(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._calls.clear()
        self._failures = 0
        log.warning("circuit breaker %s opened (error rate %.0f%%)", self.name, 100 * self.last_error_rate)


def is_provider_fault(error: BaseException | None) -> bool:
    """Whether an error counts against the provider's health (server errors yes, a blocked photo no)."""
    if error is None:
        return False
    return not isinstance(error, ProviderError) or error.kind in PROVIDER_FAULT_KINDS


# -------------------------------------------------------------------------------------------- routing


class RoutingConfig(Protocol):
    """What `route` reads: PipelineConfig rows and the worker's per-photo snapshots both have it."""

    @property
    def active_provider(self) -> str: ...

    @property
    def active_model(self) -> str: ...

    @property
    def fallback_provider(self) -> str | None: ...


@dataclass(frozen=True)
class RouteDecision:
    """Which provider and model serve a photo, and why."""

    provider: str
    model: str
    reason: str
    fallback: bool = False

    def trace(self) -> dict[str, Any]:
        """The decision as a trace step."""
        return {"step": "route", "provider": self.provider, "model": self.model, "reason": self.reason,
                "fallback": self.fallback}


class NoRouteAvailable(AiconsoleError):
    """Every provider a photo could go to has its circuit open."""

    def __init__(self, message: str, *, provider: str, reopens_in_s: float, hint: str | None = None) -> None:
        self.provider = provider
        self.reopens_in_s = reopens_in_s
        super().__init__(message, hint=hint)


def route(org_config: RoutingConfig, breakers: Mapping[str, CircuitBreaker], *,
          fallback_model: Callable[[str], str] | None = None) -> RouteDecision:
    """The primary provider while its breaker allows calls, else the fallback, else NoRouteAvailable."""
    primary, model = org_config.active_provider, org_config.active_model
    breaker = breakers.get(primary)
    if breaker is None or breaker.allow():
        state = "half-open probe" if breaker is not None and breaker.state == "half_open" else "closed"
        return RouteDecision(primary, model, f"primary {primary} (circuit {state})")
    fallback = org_config.fallback_provider
    if fallback and fallback != primary:
        fb_breaker = breakers.get(fallback)
        if fb_breaker is None or fb_breaker.allow():
            fb_model = fallback_model(fallback) if fallback_model else model
            return RouteDecision(fallback, fb_model, f"fallback {fallback}: circuit of {primary} is {breaker.state}",
                                 fallback=True)
    wait = breaker.reopens_in_s()
    extra = f" and the fallback {fallback}'s is open too" if fallback and fallback != primary else \
        " and no fallback provider is configured"
    raise NoRouteAvailable(
        f"{CIRCUIT_REASON_PREFIX} {primary} failed {breaker.last_error_rate:.0%} of recent calls{extra}.",
        provider=primary, reopens_in_s=wait,
        hint="Processing resumes by itself when a probe succeeds; or set a fallback provider in Pipeline settings.")


# ---------------------------------------------------------------------------------------- budget guard


@dataclass(frozen=True)
class BudgetStatus:
    """An organization's spend against its budgets, and whether the guard paused it."""

    organization_id: int
    spent_today_micros: int
    spent_month_micros: int
    daily_budget_micros: int | None
    monthly_budget_micros: int | None
    reason: str | None
    paused_now: bool

    @property
    def reached(self) -> bool:
        """Whether a budget is used up."""
        return self.reason is not None


def budget_reason(*, spent_today: int, spent_month: int, daily: int | None, monthly: int | None) -> str | None:
    """The pause reason when a budget is used up, else None."""
    def usd(micros: int, budget: int) -> str:
        # Cents for budgets of a dollar or more; a $0.0050 test budget needs four places to read.
        return format_usd(micros, places=2 if budget >= 1_000_000 else 4)

    if daily is not None and spent_today >= daily:
        return f"Daily budget of {usd(daily, daily)} reached ({usd(spent_today, daily)} spent today)."
    if monthly is not None and spent_month >= monthly:
        return f"Monthly budget of {usd(monthly, monthly)} reached ({usd(spent_month, monthly)} spent this month)."
    return None


class BudgetGuard:
    """Pauses an organization (audited, as system:worker) once today's or this month's spend reaches its budget."""

    def __init__(self, *, engine: Engine | None = None, actor_name: str = "worker") -> None:
        self.engine = engine
        self.actor_name = actor_name

    def check(self, organization_id: int, *, now: datetime | None = None) -> BudgetStatus:
        """Compare spend with the budgets and pause the organization when one is reached."""
        now = now or utcnow()
        with service_session(engine=self.engine) as s:
            cfg = s.get(PipelineConfig, organization_id)
            daily = cfg.daily_budget_micros if cfg else None
            monthly = cfg.monthly_budget_micros if cfg else None
            if cfg is None or (daily is None and monthly is None):
                return BudgetStatus(organization_id, 0, 0, daily, monthly, None, False)
            clock = org_clock(s, organization_id=organization_id, now=now)
            totals = window_totals(s, organization_id=organization_id,
                                   windows=named_windows(clock, ("today", "month")))
            today = sum_totals(totals["today"]).cost_micros
            month = sum_totals(totals["month"]).cost_micros
            reason = budget_reason(spent_today=today, spent_month=month, daily=daily, monthly=monthly)
            if reason is not None and not cfg.paused:
                # Lock the row only to pause it (a check per claim must not queue behind console edits),
                # and look again under the lock: another worker may have paused it meanwhile.
                s.refresh(cfg, with_for_update=True)
            paused_now = reason is not None and not cfg.paused
            if paused_now:
                before = {"paused": cfg.paused, "pause_reason": cfg.pause_reason}
                _pause(cfg, reason, now)
                audit.record(s, actor=Actor.system(self.actor_name, organization_id), action="queue.pause",
                             entity_type="pipeline_config", entity_id=str(organization_id), before=before,
                             after={"paused": True, "pause_reason": reason, "spent_today_micros": today,
                                    "spent_month_micros": month},
                             summary=f"Paused processing automatically: {reason}", reversible=True)
        if paused_now:
            log.warning("organization %s paused: %s", organization_id, reason)
            invalidate_live(organization_id)
        return BudgetStatus(organization_id, today, month, daily, monthly, reason, paused_now)

    def resume_if_clear(self, organization_id: int, *, now: datetime | None = None) -> bool:
        """Lift the guard's own budget pause once spend is under the budgets again (a new day, a raised budget)."""
        now = now or utcnow()
        with service_session(engine=self.engine) as s:
            cfg = s.get(PipelineConfig, organization_id, with_for_update=True)
            if cfg is None or not cfg.paused or not BUDGET_REASON.match(cfg.pause_reason or ""):
                return False
            clock = org_clock(s, organization_id=organization_id, now=now)
            totals = window_totals(s, organization_id=organization_id,
                                   windows=named_windows(clock, ("today", "month")))
            if budget_reason(spent_today=sum_totals(totals["today"]).cost_micros,
                             spent_month=sum_totals(totals["month"]).cost_micros,
                             daily=cfg.daily_budget_micros, monthly=cfg.monthly_budget_micros) is not None:
                return False
            resume_paused(s, cfg, actor=Actor.system(self.actor_name, organization_id), now=now,
                          why="spend is under the budgets again")
        invalidate_live(organization_id)
        return True


def _pause(cfg: PipelineConfig, reason: str | None, now: datetime) -> None:
    cfg.paused = True
    cfg.pause_reason = reason
    cfg.paused_at = now
    cfg.version += 1
    cfg.updated_at = now
    cfg.updated_by = None


def pause_org(organization_id: int, *, reason: str, actor_name: str = "worker", engine: Engine | None = None,
              now: datetime | None = None) -> bool:
    """Pause an organization automatically with `reason` (audited); False when it was already paused."""
    now = now or utcnow()
    with service_session(engine=engine) as s:
        cfg = s.get(PipelineConfig, organization_id, with_for_update=True)
        if cfg is None or cfg.paused:
            return False
        before = {"paused": cfg.paused, "pause_reason": cfg.pause_reason}
        _pause(cfg, reason, now)
        audit.record(s, actor=Actor.system(actor_name, organization_id), action="queue.pause",
                     entity_type="pipeline_config", entity_id=str(organization_id), before=before,
                     after={"paused": True, "pause_reason": reason},
                     summary=f"Paused processing automatically: {reason}", reversible=True)
    invalidate_live(organization_id)
    return True


def resume_paused(session: Any, cfg: PipelineConfig, *, actor: Actor, now: datetime, why: str) -> None:
    """Clear an automatic pause in the caller's transaction, audited."""
    before = {"paused": cfg.paused, "pause_reason": cfg.pause_reason}
    cfg.paused = False
    cfg.pause_reason = None
    cfg.paused_at = None
    cfg.version += 1
    cfg.updated_at = now
    cfg.updated_by = None
    audit.record(session, actor=actor, action="queue.resume", entity_type="pipeline_config",
                 entity_id=str(cfg.organization_id), before=before, after={"paused": False, "pause_reason": None},
                 summary=f"Resumed processing automatically: {why} (was: {before['pause_reason']})",
                 reversible=True)
