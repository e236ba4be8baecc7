"""Routing a photo to a provider: circuit breakers and fallback.

- `CircuitBreaker`: per provider, per process; opens on an error rate over a window, half-opens after
  a pause to let one probe through, closes when the probe succeeds. The pause backs off (doubling up to a
  cap) while the provider keeps failing again soon after each probe; a real recovery resets it.
- `route()`: the primary provider, or the fallback while the primary's breaker is open.
- `moves_to_fallback()`: which failures of the primary's call move the photo to the fallback at once, in
  the same attempt (`aiconsole.pipeline.attempt`), instead of spending the photo's attempts:
  the provider cannot be used now (`UNUSABLE_KINDS`: a bad or missing key, no permission, an endpoint that
  refuses connections, does not resolve or does not accept one), whether or not the error is retryable;
  and any other fault of the provider's (429, 5xx, timeouts, unusable answers) on the photo's last attempt,
  which would otherwise fail it. Earlier attempts retry those on the primary (they usually pass), and a
  bad photo or prompt never moves: the fallback would refuse it too, and it is no provider's fault. An open
  breaker moves every photo before any call (`route`).

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
# Error kinds that say the provider cannot be used at all right now: the photo moves to the fallback at once.
UNUSABLE_KINDS = frozenset({"auth", "connection"})


# ------------------------------------------------------------------------------------ circuit breaker

CIRCUIT_STATES = ("closed", "open", "half_open")
MAX_LEVEL = 30  # 2 ** 30 times any base is past every cap; keeps the arithmetic small


def open_interval(level: int, *, open_s: float, max_open_s: float) -> float:
    """How long a breaker opened `level` times in a row without a real recovery stays open: doubling, capped."""
    return min(max(open_s, max_open_s), open_s * 2 ** min(max(0, level), MAX_LEVEL))


@dataclass(frozen=True)
class BreakerSnapshot:
    """A breaker at one moment, as health rows and Live Status report it."""

    state: str  # closed, open or half_open
    failure_rate: float  # of the calls in the window (when open: of the window that opened it)
    calls: int  # calls in the window (0 while open: the window starts again on closing)
    level: int  # consecutive opens without a real recovery (0: the first one)
    open_for_s: float  # the current (or last) open period
    reopens_in_s: float  # until an open breaker lets a probe through (0 unless open)
    opened_at: float | None  # on the breaker's clock; None if it never opened
    on_probation: bool  # closed by a probe, but not yet for `recovery_s`: reopening now doubles the period


class CircuitBreaker:
    """Closed -> open on `error_rate` over `window_s` (at least `min_calls`); half-open after the open period.

    The open period backs off: `open_s` the first time, doubling every time the breaker opens again without a
    real recovery in between, up to `max_open_s`. A probe that fails reopens it (doubled); a probe that
    succeeds closes it on probation; staying closed for `recovery_s` (default: a window) is a real recovery,
    after which the next open lasts `open_s` again. In half-open state one probe goes out at a time.
    """

    def __init__(self, name: str, error_rate: float = 0.5, window_s: float = 30, min_calls: int = 10,
                 open_s: float = 30, *, max_open_s: float | None = None, recovery_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < error_rate <= 1:
            raise ValidationFailed(f"A breaker error rate of {error_rate} is out of range.",
                                   hint="Use a fraction above 0 and at most 1, e.g. 0.5.")
        self.name = name
        self.error_rate = error_rate
        self.window_s = window_s
        self.min_calls = max(1, min_calls)
        self.open_s = open_s
        self.max_open_s = max(open_s, 10 * open_s if max_open_s is None else max_open_s)
        self.recovery_s = window_s if recovery_s is None else recovery_s
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._state = "closed"
        self._opened_at: float | None = None
        self._open_for = open_s
        self._level = 0
        self._closed_at: float | None = None  # set while on probation
        self._probe_out = False
        self.last_error_rate = 0.0

    @property
    def state(self) -> str:
        """closed, open or half_open (an open breaker whose pause is over reads as half_open)."""
        with self._lock:
            self._advance()
            return self._state

    def _advance(self) -> None:
        now = self._clock()
        if self._state == "open" and now - (self._opened_at or now) >= self._open_for:
            self._state = "half_open"
            self._probe_out = False
        elif self._state == "closed" and self._closed_at is not None and now - self._closed_at >= self.recovery_s:
            self._closed_at = None  # a real recovery: the next open starts from `open_s` again
            self._level = 0

    def _reopens_in(self) -> float:
        if self._state != "open" or self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._open_for - self._clock())

    def reopens_in_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 unless open)."""
        with self._lock:
            self._advance()
            return self._reopens_in()

    def snapshot(self) -> BreakerSnapshot:
        """The breaker's state, failure rate, back-off level and schedule right now."""
        with self._lock:
            self._advance()
            return BreakerSnapshot(state=self._state, failure_rate=self.last_error_rate, calls=len(self._calls),
                                   level=self._level, open_for_s=self._open_for, reopens_in_s=self._reopens_in(),
                                   opened_at=self._opened_at, on_probation=self._closed_at is not None)

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
                    self._close(now)
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

    def hold_open(self, level: int) -> None:
        """Adopt a higher back-off level decided elsewhere (the organization's shared circuit) while open."""
        with self._lock:
            self._advance()
            if self._state == "closed" or self._probe_out or level <= self._level:
                return
            self._level = min(level, MAX_LEVEL)
            self._open_for = open_interval(self._level, open_s=self.open_s, max_open_s=self.max_open_s)
            self._state = "open"
            self._advance()  # half-open again at once if the longer period is over too

    def close_on_probation(self, level: int) -> None:
        """Close because a probe elsewhere succeeded after this breaker opened; `level` carries its back-off."""
        with self._lock:
            self._advance()
            if self._state == "closed":
                return
            self._level = max(self._level, min(level, MAX_LEVEL))
            self._close(self._clock())

    def _close(self, now: float) -> None:
        self._state = "closed"
        self._probe_out = False
        self._closed_at = now
        self._calls.clear()
        self._failures = 0
        log.info("circuit breaker %s closed (on probation for %.3g s)", self.name, self.recovery_s)

    def _open(self, now: float) -> None:
        # Opening again before a real recovery (from half-open, or on probation) doubles the period.
        again = self._state == "half_open" or self._closed_at is not None
        self._level = min(self._level + 1, MAX_LEVEL) if again else 0
        self._open_for = open_interval(self._level, open_s=self.open_s, max_open_s=self.max_open_s)
        self._state = "open"
        self._opened_at = now
        self._closed_at = None
        self._calls.clear()
        self._failures = 0
        log.warning("circuit breaker %s opened for %.3g s (error rate %.0f%%)", self.name, self._open_for,
                    100 * self.last_error_rate)


def is_provider_fault(error: BaseException | None) -> bool:
    """Whether an error counts against the provider's health (server errors yes, a blocked photo no)."""
    if error is None:
        return False
    return not isinstance(error, ProviderError) or error.kind in PROVIDER_FAULT_KINDS


def moves_to_fallback(error: ProviderError, *, last_attempt: bool) -> bool:
    """Whether a photo whose primary call failed with `error` goes to the fallback in the same attempt."""
    return error.kind in UNUSABLE_KINDS or (last_attempt and is_provider_fault(error))


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
