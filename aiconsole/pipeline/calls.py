"""One photo through the pipeline: experiment variant, route, rate limit, provider call, retry decision.

`Caller.process` runs on the worker's call threads and returns what the recorder needs (an `Outcome`),
or `Released` when no provider may be called at all (every circuit open, the provider disabled): the
worker then gives the photo back untouched and pauses the organization with the reason. When Redis or
the database fails (an `InfrastructureFault`, e.g. the shared rate limiter's Redis is down) it returns
`Held`: that is nobody's photo's fault, so the worker gives it back without counting the attempt and
waits for the fault to clear. A primary that cannot be used (a bad key, an unreachable endpoint; or any
fault of its own on the photo's last attempt) hands the photo to the fallback in the same attempt
(`aiconsole.pipeline.attempt`, routing's `moves_to_fallback`). Every decision goes into the photo's trace
with its timing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiconsole.pipeline import config_row
from aiconsole.pipeline.attempt import Attempt
from aiconsole.pipeline.context import OrgContext, ProviderSetup
from aiconsole.pipeline.experiments import assign
from aiconsole.pipeline.images import load_image_bytes
from aiconsole.pipeline.metrics import WorkerMetrics
from aiconsole.pipeline.queue import ClaimedPhoto
from aiconsole.pipeline.rate_limit import RateLimiter
from aiconsole.pipeline.recording import Outcome
from aiconsole.pipeline.retry import RetryPolicy
from aiconsole.pipeline.routing import (
    CircuitBreaker,
    NoRouteAvailable,
    RouteDecision,
    is_provider_fault,
    moves_to_fallback,
    route,
)
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AiconsoleError, InfrastructureFault, ProviderError, infrastructure_fault
from aiconsole.platform.settings import Settings
from aiconsole.prompts.render import PromptError, PromptSpec
from aiconsole.providers.base import AnalysisRequest, ImageInput, Provider, ProviderResult, ProviderSettings
from aiconsole.providers.registry import build_provider, capabilities, default_model

log = logging.getLogger(__name__)

ProviderFactory = Callable[[str, ProviderSettings], Provider]
DISABLED_REASON = "Provider disabled:"


@dataclass(frozen=True)
class CallOptions:
    """Tunables of the per-photo pipeline."""

    max_labels: int = 15
    rate_limit_timeout_s: float = 30.0
    rate_limit_guard_s: float = 0.04
    retry_base_delay_s: float = 2.0
    retry_max_delay_s: float = 300.0
    breaker_error_rate: float = 0.5
    breaker_window_s: float = 30.0
    breaker_min_calls: int = 10
    breaker_open_s: float = 30.0
    breaker_max_open_s: float = 300.0  # the open period doubles each time a provider fails again, up to this


@dataclass(frozen=True)
class Released:
    """A photo no provider could take; the worker releases it and pauses its organization with `reason`."""

    photo: ClaimedPhoto
    reason: str
    provider: str
    pause_kind: str


@dataclass(frozen=True)
class Held:
    """A photo not processed because of `fault` (Redis, the database): given back, its attempt not counted."""

    photo: ClaimedPhoto
    fault: InfrastructureFault


@dataclass(frozen=True)
class _Route:
    active_provider: str
    active_model: str
    fallback_provider: str | None


@dataclass
class CallStats:
    """This worker's recent calls per (organization, provider), for the provider health rows."""

    latencies: list[int] = field(default_factory=list)
    faults: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None  # the newest provider fault's message, for the health row's reason


class Caller:
    """Shared by the worker's call threads: providers, limiters and breakers per (organization, provider)."""

    def __init__(self, *, worker_id: str, settings: Settings, metrics: WorkerMetrics,
                 options: CallOptions | None = None, provider_factory: ProviderFactory | None = None) -> None:
        self.worker_id = worker_id
        self.settings = settings
        self.metrics = metrics
        self.options = options or CallOptions()
        self._factory = provider_factory or build_provider
        self._lock = threading.Lock()
        self._providers: dict[tuple[int, str], tuple[ProviderSettings, Provider]] = {}
        self._building: dict[tuple[int, str], threading.Lock] = {}
        self._limiters: dict[tuple[int, str], RateLimiter] = {}
        self._breakers: dict[tuple[int, str], CircuitBreaker] = {}
        self._stats: dict[tuple[int, str], CallStats] = {}

    # -- per (org, provider) resources ------------------------------------------------------------------

    def breaker(self, org: int, provider: str) -> CircuitBreaker:
        """The organization's circuit breaker for `provider`."""
        with self._lock:
            b = self._breakers.get((org, provider))
            if b is None:
                o = self.options
                b = self._breakers[(org, provider)] = CircuitBreaker(
                    f"{provider}@{org}", error_rate=o.breaker_error_rate, window_s=o.breaker_window_s,
                    min_calls=o.breaker_min_calls, open_s=o.breaker_open_s, max_open_s=o.breaker_max_open_s)
            return b

    def breakers(self) -> dict[tuple[int, str], CircuitBreaker]:
        """Every breaker this worker has, by (organization, provider)."""
        with self._lock:
            return dict(self._breakers)

    def _limiter(self, org: int, setup: ProviderSetup) -> RateLimiter:
        with self._lock:
            lim = self._limiters.get((org, setup.provider))
            if lim is None or lim.per_minute != setup.rate_limit_per_minute:
                lim = self._limiters[(org, setup.provider)] = RateLimiter(
                    setup.provider, setup.rate_limit_per_minute, self.settings.redis_url, scope=str(org),
                    guard_s=self.options.rate_limit_guard_s)
            return lim

    def _provider(self, org: int, setup: ProviderSetup) -> Provider:
        wanted = setup.settings()
        key = (org, setup.provider)
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        # One thread builds while the others wait (none of them holds a rate-limit slot yet).
        with building:
            with self._lock:
                held = self._providers.get(key)
            if held is not None and held[0] == wanted:
                return held[1]
            provider = self._factory(setup.provider, wanted)
            # Build the SDK client now, before a rate-limit slot is taken: creating it costs a process up to
            # a second of CPU, and a thread that took its slot meanwhile would send late, landing next to
            # requests whose slots were taken a second after its own. (Providers create clients lazily.)
            warm = getattr(provider, "warm_up", None)
            if callable(warm):
                warm()
            with self._lock:
                self._providers[key] = (wanted, provider)
            return provider

    def drain_stats(self) -> dict[tuple[int, str], CallStats]:
        """The calls since the last drain, by (organization, provider)."""
        with self._lock:
            stats, self._stats = self._stats, {}
            return stats

    def _note(self, org: int, provider: str, ms: int, error: ProviderError | None) -> None:
        with self._lock:
            st = self._stats.setdefault((org, provider), CallStats())
            st.latencies.append(ms)
            if error is not None:
                st.kinds[error.kind] = st.kinds.get(error.kind, 0) + 1
                if is_provider_fault(error):
                    st.faults += 1
                    st.last_error = error.message[:300]

    # -- one call ----------------------------------------------------------------------------------------

    def call(self, ctx: OrgContext, decision: RouteDecision, image: ImageInput, prompt: str | None,
             trace: list[dict[str, Any]]) -> ProviderResult:
        """Wait for the rate limit, call the provider and count the outcome (breaker, metrics, stats)."""
        org, name = ctx.organization_id, decision.provider
        setup = ctx.setup(name)
        breaker = self.breaker(org, name)
        try:
            provider = self._provider(org, setup)
        except ProviderError as exc:  # e.g. no credentials: the provider is unusable, which the breaker counts
            breaker.record(not is_provider_fault(exc))
            self.metrics.observe_call(provider=name, seconds=0.0, error_kind=exc.kind)
            self._note(org, name, 0, exc)
            raise
        if setup.emulated:  # so the photo's debug view never passes an emulated answer off as Google's
            trace.append({"step": "emulated", "provider": name, "endpoint": setup.endpoint, "ms": 0.0})
        waited = time.perf_counter()
        try:
            got = self._limiter(org, setup).acquire(self.options.rate_limit_timeout_s)
        except (ProviderError, InfrastructureFault):
            breaker.release()
            raise
        trace.append({"step": "rate_limit", "per_minute": setup.rate_limit_per_minute,
                      "ms": round((time.perf_counter() - waited) * 1000, 3), "acquired": got})
        if not got:
            breaker.release()
            raise ProviderError(f"No {name} request slot freed up within {self.options.rate_limit_timeout_s:g} s "
                                f"(limit {setup.rate_limit_per_minute}/min shared by every worker).",
                                kind="rate_limited", retryable=True,
                                hint="The photo is retried later; raise the provider's rate limit if the queue grows.")
        request = AnalysisRequest(
            model=decision.model, prompt=prompt, max_labels=self.options.max_labels, timeout_s=setup.timeout_s,
            month_units_before=ctx.take_vision_units(1) if capabilities(name).free_tier else 0,
            price_overrides=dict(setup.price_overrides) or None)
        started = time.perf_counter()
        error: ProviderError | None = None
        try:
            return provider.analyze(image, request)
        except ProviderError as exc:
            error = exc
            raise
        except Exception as exc:  # a provider bug must not kill the call thread; retried within the budget
            log.exception("provider %s raised an unexpected error", name)
            error = ProviderError(f"{name} failed unexpectedly: {type(exc).__name__}: {str(exc)[:300]}",
                                  kind="internal", retryable=True,
                                  hint="This is a bug in aiconsole or the provider client; please report it.")
            raise error from exc
        finally:
            ms = round((time.perf_counter() - started) * 1000)
            breaker.record(not is_provider_fault(error))
            self.metrics.observe_call(provider=name, seconds=ms / 1000, error_kind=error.kind if error else None)
            self._note(org, name, ms, error)

    # -- one photo ----------------------------------------------------------------------------------------

    def process(self, photo: ClaimedPhoto, ctx: OrgContext, *,
                claimed_at: datetime) -> Outcome | Released | Held:
        """Run one claimed photo through the pipeline; never raises for a photo's own problems."""
        t0 = time.perf_counter()
        org = ctx.organization_id
        trace: list[dict[str, Any]] = [{"step": "claim", "worker": self.worker_id, "attempt": photo.attempts,
                                        "ms": 0.0}]
        provider, model = ctx.active_provider, ctx.active_model
        spec: PromptSpec | None = ctx.prompt
        variables: dict[str, Any] = {}
        experiment_id: int | None = None
        variant: str | None = None
        if ctx.experiment is not None:
            a = assign(ctx.experiment, photo.id)
            v = a.variant
            v_provider = v.provider or provider
            step = a.trace()
            if not ctx.setup(v_provider).enabled:
                step["skipped"] = f"{v_provider} is disabled for this organization"
            else:
                experiment_id, variant = a.experiment_id, v.name
                provider = v_provider
                model = v.model or (model if v.provider in (None, ctx.active_provider) else default_model(provider))
                if v.prompt_version_id is not None:
                    spec = ctx.prompt_versions.get(v.prompt_version_id)
                variables = dict(v.variables)
            trace.append(step)
        allowed = False  # whether route() took a breaker slot that must be freed if no call goes out
        fallback = ctx.fallback_provider if ctx.fallback_provider and ctx.setup(ctx.fallback_provider).enabled \
            else None
        if not ctx.setup(provider).enabled:
            if fallback is None or fallback == provider:
                return Released(photo, f"{DISABLED_REASON} {provider} is disabled for this organization and no "
                                       "enabled fallback provider is configured.", provider,
                                config_row.PROVIDER_DISABLED)
            trace.append({"step": "route", "provider": fallback, "model": default_model(fallback),
                          "reason": f"fallback {fallback}: {provider} is disabled", "fallback": True})
            decision = RouteDecision(fallback, default_model(fallback), f"{provider} is disabled", fallback=True)
        else:
            names = [p for p in (provider, fallback) if p]
            try:
                decision = route(_Route(provider, model, fallback), {p: self.breaker(org, p) for p in names},
                                 fallback_model=default_model)
            except NoRouteAvailable as exc:
                return Released(photo, exc.message, exc.provider, config_row.CIRCUIT_OPEN)
            allowed = True
            trace.append(decision.trace())
        att = Attempt(decision, spec, variables, experiment_id, variant, allowed)
        if decision.fallback:
            att.off_experiment(ctx, trace)
        self._count_route(decision)

        result: ProviderResult | None = None
        error: ProviderError | None = None
        try:
            prompt = att.render(photo, max_labels=self.options.max_labels, trace=trace)
            loaded = time.perf_counter()
            data = load_image_bytes(photo.storage_uri, settings=self.settings)
            trace.append({"step": "load_image", "bytes": len(data),
                          "ms": round((time.perf_counter() - loaded) * 1000, 3)})
            image = ImageInput(data=data, content_type=photo.content_type, width=photo.width, height=photo.height,
                               sha256=photo.sha256)
            try:
                result = self.call(ctx, att.decision, image, prompt, trace)
            except ProviderError as exc:
                if not self._move_to_fallback(ctx, photo, att, exc, fallback, trace):
                    raise
                prompt = att.render(photo, max_labels=self.options.max_labels, trace=trace)
                result = self.call(ctx, att.decision, image, prompt, trace)
        except InfrastructureFault as exc:  # raised by call() before any request went out; it freed the breaker
            return Held(photo, exc)
        except ProviderError as exc:
            error = exc
        except AiconsoleError as exc:  # the photo's file or its prompt: trying again will not help
            if att.allowed:
                self.breaker(org, att.decision.provider).release()
            kind = "prompt" if isinstance(exc, PromptError) else "image"
            error = ProviderError(exc.message, kind=kind, retryable=False, hint=exc.hint)
        except Exception as exc:
            if att.allowed:
                self.breaker(org, att.decision.provider).release()
            fault = infrastructure_fault(exc)
            if fault is not None:
                return Held(photo, fault)
            log.exception("photo %s failed unexpectedly", photo.id)
            error = ProviderError(f"Processing failed unexpectedly: {type(exc).__name__}: {str(exc)[:300]}",
                                  kind="internal", retryable=True, hint="This is a bug; please report it.")
        return self._outcome(photo, ctx, att.decision, result, error, trace, t0=t0, claimed_at=claimed_at,
                             prompt_version_id=att.prompt_version_id, experiment_id=att.experiment_id,
                             variant=att.variant)

    def _count_route(self, decision: RouteDecision) -> None:
        self.metrics.routing.labels(provider=decision.provider,
                                    kind="fallback" if decision.fallback else "primary").inc()

    def _move_to_fallback(self, ctx: OrgContext, photo: ClaimedPhoto, att: Attempt, exc: ProviderError,
                          fallback: str | None, trace: list[dict[str, Any]]) -> bool:
        """Route the photo to the fallback in this attempt when the primary's failure calls for it (routing's
        `moves_to_fallback`) and the fallback's breaker lets a call through; traced."""
        primary = att.decision.provider
        if att.decision.fallback or fallback is None or fallback == primary:
            return False
        if not moves_to_fallback(exc, last_attempt=photo.attempts >= ctx.max_retries):
            return False
        if not self.breaker(ctx.organization_id, fallback).allow():
            return False
        att.move_to(ctx, fallback, exc, trace)
        self._count_route(att.decision)
        return True

    def _outcome(self, photo: ClaimedPhoto, ctx: OrgContext, decision: RouteDecision, result: ProviderResult | None,
                 error: ProviderError | None, trace: list[dict[str, Any]], *, t0: float, claimed_at: datetime,
                 prompt_version_id: int | None, experiment_id: int | None, variant: str | None) -> Outcome:
        now = utcnow()
        final, retry_at = True, None
        if result is not None:
            trace.extend(result.trace)
            limit = ctx.max_cost_per_photo_micros
            if limit is not None and result.cost_micros > limit:
                trace.append({"step": "cost_limit", "cost_micros": result.cost_micros, "max_micros": limit,
                              "exceeded": True, "ms": 0.0})
                log.warning("photo %s cost %s micro-USD, above the org's max of %s", photo.id, result.cost_micros,
                            limit)
        elif error is not None:
            policy = RetryPolicy(max_attempts=ctx.max_retries, base_delay_s=self.options.retry_base_delay_s,
                                 max_delay_s=max(self.options.retry_base_delay_s, self.options.retry_max_delay_s))
            if policy.should_retry(attempts=photo.attempts, retryable=error.retryable):
                final, retry_at = False, policy.next_attempt_at(now, photo.attempts)
                self.metrics.retries.labels(provider=decision.provider, kind=error.kind).inc()
            trace.append({"step": "error", "kind": error.kind, "message": error.message[:500],
                          "retryable": error.retryable, "will_retry": not final, "ms": 0.0})
        return Outcome(
            photo=photo, result=result, error=None if result is not None else error, final=final, retry_at=retry_at,
            queue_wait_ms=max(0, round((claimed_at - photo.created_at).total_seconds() * 1000)),
            total_ms=round((time.perf_counter() - t0) * 1000), retry_count=max(0, photo.attempts - 1),
            provider=decision.provider, model=decision.model, prompt_version_id=prompt_version_id,
            experiment_id=experiment_id, variant=variant, trace=tuple(trace))

    def crash_outcome(self, photo: ClaimedPhoto, ctx: OrgContext, exc: Exception, claimed_at: datetime) -> Outcome:
        """The outcome of a photo whose processing raised (a bug): retried within its attempts, then failed."""
        error = ProviderError(f"Processing crashed: {type(exc).__name__}: {str(exc)[:300]}", kind="internal",
                              retryable=True, hint="This is a bug; please report it with the worker's log.")
        decision = RouteDecision(ctx.active_provider, ctx.active_model, "crashed before routing")
        return self._outcome(photo, ctx, decision, None, error, [], t0=time.perf_counter(), claimed_at=claimed_at,
                             prompt_version_id=None, experiment_id=None, variant=None)


_shared: dict[tuple[str, str | None], Caller] = {}
_shared_lock = threading.Lock()


def shared_caller(worker_id: str, *, settings: Settings, options: CallOptions) -> Caller:
    """One Caller per process, `worker_id` and Redis, for callers outside the worker (the Testing Lab): provider
    clients are built once and the rate limit is the one the organization's workers share, so lab calls never
    push the organization over its provider quota."""
    key = (worker_id, settings.redis_url)
    with _shared_lock:
        caller = _shared.get(key)
        if caller is None:
            caller = _shared[key] = Caller(worker_id=worker_id, settings=settings, metrics=WorkerMetrics(),
                                           options=options)
        return caller
