"""Provider health from a worker's point of view: health rows from its calls, and probes.

Every `health_interval_s` the worker writes one `ai_provider_health` row per (organization, provider) it
called since the last write: median latency, the share of calls that failed for the provider's sake
(server errors, timeouts, 429s, bad keys, unusable answers; a blocked photo does not count), and the
circuit state. A provider an organization routes to that saw no traffic gets a probe (one real call on a
tiny generated image) at most every `idle_probe_interval_s`, so Live Status knows it still answers.

When a circuit paused an organization, the worker probes that provider once the breaker's pause is over
and resumes the organization (audited, as system:worker) when the probe succeeds.
"""

from __future__ import annotations

import hashlib
import io
import logging
import statistics
import threading
import time
from functools import lru_cache

from PIL import Image

from aiconsole.pipeline import config_row
from aiconsole.pipeline.calls import Caller
from aiconsole.pipeline.context import ContextCache, OrgContext
from aiconsole.pipeline.health_report import health_status
from aiconsole.pipeline.routing import RouteDecision
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
                                               "failures": st.faults, "kinds": st.kinds, "circuit": circuit}))
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
        if rows:
            with service_session() as s:
                s.add_all(rows)
        return len(rows)

    def circuit_paused(self, organization_id: int, provider: str) -> None:
        """Remember which provider's circuit paused an organization (the one to probe)."""
        with self._lock:
            self._circuit[organization_id] = provider

    def probe_circuit(self, organization_id: int) -> bool:
        """Probe the provider whose circuit paused the organization; resume it when the probe succeeds."""
        ctx = self.contexts.ensure([organization_id])[organization_id]
        with self._lock:
            provider = self._circuit.get(organization_id, ctx.active_provider)
        key = (organization_id, provider)
        if time.monotonic() < self._next_probe.get(key, 0.0):
            return False
        # No sooner than a breaker would let a probe through again.
        self._next_probe[key] = time.monotonic() + self.caller.options.breaker_open_s
        breaker = self.caller.breaker(organization_id, provider)
        if not breaker.allow():
            return False  # this worker's own breaker is still open; its pause decides
        ok, ms, kind, _ = self.probe(ctx, provider)
        if not ok:
            log.warning("probe of %s for organization %s failed (%s); staying paused", provider, organization_id, kind)
            return False
        now = utcnow()
        with service_session() as s:
            cfg = config_row.lock(s, organization_id)
            if cfg is None or not cfg.paused or cfg.pause_kind != config_row.CIRCUIT_OPEN:
                return False
            config_row.auto_resume(s, cfg, actor=Actor.system("worker", organization_id), now=now,
                                   why=f"a probe of {provider} succeeded in {ms} ms")
        with self._lock:
            self._circuit.pop(organization_id, None)
        invalidate_live(organization_id)
        log.warning("organization %s resumed: probe of %s succeeded", organization_id, provider)
        return True
