"""Provider health from a worker's point of view: health rows from its calls, and probes.

Every `health_interval_s` the worker writes one `ai_provider_health` row per (organization, provider) it
called since the last write: median latency, the share of calls that failed for the provider's sake
(server errors, timeouts, 429s, bad keys, unusable answers; a blocked photo does not count), the newest
such failure's message (Live Status names it as the reason, also when the photos went to the fallback and
left no result of this provider), and the circuit state. A provider an organization routes to that saw no
traffic gets a probe (one real call on a tiny generated image) at most every `idle_probe_interval_s`, so
Live Status knows it still answers.

When a circuit paused an organization, the organization's shared circuit (`aiconsole.pipeline.circuits`)
says when the next probe may go out: one worker claims it, probes, and resumes the organization (audited,
as system:worker) when it succeeds, or reopens the circuit for twice as long (up to the cap) when it fails.
A breaker that opens while its organization keeps routing (to a fallback) is reported there at the next
health write.
"""

from __future__ import annotations

import hashlib
import io
import logging
import statistics
import threading
import time
from datetime import datetime, timedelta
from functools import lru_cache

from PIL import Image
from sqlalchemy.orm import Session

from aiconsole.pipeline import circuits, config_row
from aiconsole.pipeline import queue as q
from aiconsole.pipeline.calls import Caller
from aiconsole.pipeline.context import ContextCache, OrgContext
from aiconsole.pipeline.health_report import health_status
from aiconsole.pipeline.routing import BreakerSnapshot, CircuitBreaker, RouteDecision, open_interval
from aiconsole.platform.actor import Actor
from aiconsole.platform.cache import invalidate_live
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import AiProviderHealth
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AiconsoleError
from aiconsole.prompts.render import prompt_values, render_prompt
from aiconsole.providers.base import ImageInput
from aiconsole.providers.registry import capabilities, default_model

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def probe_image() -> ImageInput:
    """A 32x32 PNG gradient: the smallest honest image to ask a provider about."""
    im = Image.new("RGB", (32, 32))
    im.putdata([(x * 8, y * 8, 128) for y in range(32) for x in range(32)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    return ImageInput(data=data, content_type="image/png", width=32, height=32,
                      sha256=hashlib.sha256(data).hexdigest())


class HealthReporter:
    """Writes this worker's provider health rows and runs its probes."""

    def __init__(self, *, worker_id: str, caller: Caller, contexts: ContextCache, idle_probe_interval_s: float) -> None:
        self.worker_id = worker_id
        self.caller = caller
        self.contexts = contexts
        self.idle_probe_interval_s = idle_probe_interval_s
        self._lock = threading.Lock()
        self._circuit: dict[int, str] = {}
        self._next_probe: dict[tuple[int, str], float] = {}
        self._last_traffic: dict[tuple[int, str], float] = {}
        # What this worker last wrote of each circuit: (open?, the breaker's opened_at), so a breaker's change
        # is written once.
        self._reported: dict[tuple[int, str], tuple[bool, float | None]] = {}

    def probe(self, ctx: OrgContext, provider: str) -> tuple[bool, int, str | None, int]:
        """One real call of `provider` for the organization: (ok, ms, error kind, cost in micro-USD)."""
        model = ctx.active_model if provider == ctx.active_provider else default_model(provider)
        started = time.perf_counter()
        try:
            prompt = None
            image = probe_image()
            if capabilities(provider).takes_prompt and ctx.prompt is not None:
                # Every value a photo would give: a prompt that uses the image's size or type renders too.
                prompt = render_prompt(ctx.prompt, prompt_values(
                    max_tags=self.caller.options.max_labels, width=image.width, height=image.height,
                    content_type=image.content_type))
            result = self.caller.call(ctx, RouteDecision(provider, model, "health probe"), image, prompt, [])
        except AiconsoleError as exc:
            return False, round((time.perf_counter() - started) * 1000), getattr(exc, "kind", "config"), 0
        return True, result.latency_ms, None, result.cost_micros

    def write_health(self) -> int:
        """Health rows for the calls since the last write, plus probes of idle providers; returns rows written."""
        now, mono = utcnow(), time.monotonic()
        stats = self.caller.drain_stats()
        breakers = self.caller.breakers()
        rows: list[AiProviderHealth] = []
        for (org, provider), st in stats.items():
            self._last_traffic[(org, provider)] = mono
            calls = len(st.latencies)
            rate = st.faults / calls if calls else 0.0
            breaker = breakers.get((org, provider))
            circuit = breaker.state if breaker is not None else "closed"
            rows.append(AiProviderHealth(
                organization_id=org, provider_name=provider, status=health_status(error_rate=rate, circuit=circuit),
                response_time_ms=round(statistics.median(st.latencies)) if calls else None, error_rate=rate,
                last_check=now, error_details={"source": "worker", "worker": self.worker_id, "calls": calls,
                                               "failures": st.faults, "kinds": st.kinds, "circuit": circuit,
                                               "last_error": st.last_error}))
        for org, ctx in self.contexts.known().items():
            key = (org, ctx.active_provider)
            idle_since = self._last_traffic.setdefault(key, mono)  # first sight counts as traffic
            if key in stats or mono - idle_since < self.idle_probe_interval_s:
                continue
            if mono < self._next_probe.get(key, 0.0):
                continue
            self._next_probe[key] = mono + self.idle_probe_interval_s
            ok, ms, kind, cost = self.probe(ctx, ctx.active_provider)
            rows.append(AiProviderHealth(
                organization_id=org, provider_name=ctx.active_provider, status="healthy" if ok else "down",
                response_time_ms=ms, error_rate=0.0 if ok else 1.0, last_check=now,
                error_details={"source": "probe", "worker": self.worker_id, "error_kind": kind, "cost_micros": cost}))
        changed = self._changed_breakers()
        if rows or changed:
            with service_session() as s:
                s.add_all(rows)
                return len(rows) + self._report_breakers(s, changed, now)
        return 0

    def _changed_breakers(self) -> dict[tuple[int, str], BreakerSnapshot]:
        """This worker's breakers that opened, reopened or closed since this worker last wrote them."""
        changed = {}
        for key, breaker in self.caller.breakers().items():
            snap = breaker.snapshot()
            is_open = snap.state != "closed"
            was = self._reported.get(key, (False, None))
            if is_open != was[0] or (is_open and snap.opened_at != was[1]):
                changed[key] = snap
        return changed

    def _report_breakers(self, session: Session, changed: dict[tuple[int, str], BreakerSnapshot],
                         now: datetime) -> int:
        """Circuit rows for breakers that changed while their organization kept routing (e.g. to a fallback).

        An organization a circuit paused is left out: its circuit follows the probes (`probe_circuit`).
        """
        paused = {org for org, kind, _ in config_row.auto_resumable(session) if kind == config_row.CIRCUIT_OPEN}
        written = 0
        for (org, provider), snap in changed.items():
            if org in paused:
                continue
            state = "closed" if snap.state == "closed" else "open"
            circuits.write(session, org, provider, state=state, level=snap.level, worker=self.worker_id, now=now,
                           failure_rate=snap.failure_rate,
                           next_probe_at=None if state == "closed" else now + timedelta(seconds=snap.reopens_in_s))
            self._mark(org, provider, snap)
            written += 1
        return written

    def _mark(self, org: int, provider: str, snap: BreakerSnapshot) -> None:
        with self._lock:
            self._reported[(org, provider)] = (snap.state != "closed", snap.opened_at)

    def circuit_opened(self, organization_id: int, provider: str) -> bool:
        """A breaker here sent photos back (no route): open the organization's circuit; whether to pause it.

        False when the breaker is stale: a probe (of another worker) closed the circuit after this breaker
        opened, so this breaker closes too and the photos are simply claimed again. Otherwise the breaker
        adopts the circuit's back-off level: opening again before a real recovery doubles the period.
        """
        breaker = self.caller.breaker(organization_id, provider)
        snap = breaker.snapshot()
        if snap.state == "closed":
            return False  # a probe on another call thread closed it meanwhile
        now = utcnow()
        opened = now - timedelta(seconds=time.monotonic() - (snap.opened_at or time.monotonic()))
        with q.write_session() as s:
            if config_row.lock(s, organization_id) is None:
                return False
            prev = circuits.latest_one(s, organization_id, provider, now=now)
            if prev is not None and prev.state == "closed" and prev.at > opened:
                breaker.close_on_probation(prev.level)
                self._mark(organization_id, provider, breaker.snapshot())
                return False
            if prev is not None and prev.state != "closed":
                breaker.hold_open(prev.level)  # already open: another worker (or an earlier batch) wrote it
            else:
                breaker.hold_open(circuits.next_level(prev, now, recovery_s=breaker.recovery_s))
                snap = breaker.snapshot()
                # Opened just now, at this level: the probe is due a whole period after the row's moment (the
                # time left on the breaker is that period less however long this thread waited since).
                circuits.write(s, organization_id, provider, state="open", level=snap.level, worker=self.worker_id,
                               now=now, failure_rate=snap.failure_rate,
                               next_probe_at=now + timedelta(seconds=snap.open_for_s))
            self._mark(organization_id, provider, breaker.snapshot())
        with self._lock:
            self._circuit[organization_id] = provider
        return True

    def probe_circuit(self, organization_id: int) -> bool:
        """Probe the provider whose circuit paused the organization if its probe is due and this worker claims
        it; resume the organization when it succeeds, reopen the circuit (doubled) when it fails."""
        ctx = self.contexts.ensure([organization_id])[organization_id]
        with self._lock:
            provider = self._circuit.get(organization_id, ctx.active_provider)
        breaker = self.caller.breaker(organization_id, provider)
        if breaker.reopens_in_s() > 0:
            return False  # this worker's breaker is still open (it follows the circuit's schedule, or a longer one)
        claim = self._claim_probe(organization_id, provider, ctx, breaker)
        if claim is None:
            return False
        try:
            ok, ms, kind, _ = self.probe(ctx, provider)
        finally:
            breaker.release()  # a probe that never reached the provider (its prompt failed) frees the slot
        now = utcnow()
        with q.write_session() as s:
            cfg = config_row.lock(s, organization_id)
            paused = cfg is not None and cfg.paused and cfg.pause_kind == config_row.CIRCUIT_OPEN
            if not ok:
                level = claim.level + 1
                breaker.hold_open(level)
                wait = max(breaker.reopens_in_s(), open_interval(level, open_s=breaker.open_s,
                                                                 max_open_s=breaker.max_open_s))
                circuits.write(s, organization_id, provider, state="open", level=level, worker=self.worker_id,
                               now=now, failure_rate=claim.failure_rate, error_kind=kind,
                               next_probe_at=now + timedelta(seconds=wait))
                log.warning("probe of %s for organization %s failed (%s); next probe in %.3g s", provider,
                            organization_id, kind, wait)
                self._mark(organization_id, provider, breaker.snapshot())
                return False
            breaker.close_on_probation(claim.level)  # this worker's own breaker may not have seen the probe
            circuits.write(s, organization_id, provider, state="closed", level=claim.level, worker=self.worker_id,
                           now=now)
            self._mark(organization_id, provider, breaker.snapshot())
            if paused:
                assert cfg is not None
                config_row.auto_resume(s, cfg, actor=Actor.system("worker", organization_id), now=now,
                                       why=f"a probe of {provider} succeeded in {ms} ms")
        with self._lock:
            self._circuit.pop(organization_id, None)
        if not paused:
            return False
        invalidate_live(organization_id)
        log.warning("organization %s resumed: probe of %s succeeded", organization_id, provider)
        return True

    def _claim_probe(self, organization_id: int, provider: str, ctx: OrgContext,
                     breaker: CircuitBreaker) -> circuits.Circuit | None:
        """Claim the circuit's probe for this worker (one at a time across workers); None if not due or taken."""
        now = utcnow()
        allowed = False
        try:
            with q.write_session() as s:
                cfg = config_row.lock(s, organization_id)
                if cfg is None or not cfg.paused or cfg.pause_kind != config_row.CIRCUIT_OPEN:
                    return None
                prev = circuits.latest_one(s, organization_id, provider, now=now)
                if prev is not None and not prev.probe_due(now):
                    return None
                allowed = breaker.allow()
                if not allowed:
                    return None  # this worker's probe slot is out (a photo's call)
                # The claim lapses once the probe could no longer be running: the rate-limit wait plus the call.
                budget = self.caller.options.rate_limit_timeout_s + ctx.setup(provider).timeout_s + 5
                return circuits.write(s, organization_id, provider, state="half_open",
                                      level=prev.level if prev is not None else 0, worker=self.worker_id, now=now,
                                      failure_rate=prev.failure_rate if prev is not None else None,
                                      probe_until=now + timedelta(seconds=budget))
        except BaseException:
            if allowed:
                breaker.release()
            raise
