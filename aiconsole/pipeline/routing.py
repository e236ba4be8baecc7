"""Routing a photo to a provider: circuit breakers and fallback.

- `CircuitBreaker`: per provider, per process; opens on an error rate over a window, half-opens after
  a pause to let one probe through, closes when the probe succeeds.
- `route()`: the primary provider, or the fallback while the primary's breaker is open.

The shared rate limit is `aiconsole.pipeline.rate_limit`, the budget guard `aiconsole.pipeline.budget`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiconsole.platform.errors import AiconsoleError, ProviderError, ValidationFailed

log = logging.getLogger(__name__)

# How the reason of a photo with no route starts (the organization's pause reason, shown on Live Status).
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
