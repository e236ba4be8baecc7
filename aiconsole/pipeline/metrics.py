"""The worker's Prometheus metrics (prometheus-client), served on `aiconsole worker --metrics-port`.

Each `WorkerMetrics` owns its own registry, so several workers in one process (tests, benchmarks) never
collide on metric names. Labels stay low-cardinality: provider, status, error kind; never an
organization or photo id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from aiconsole.platform.db.models import LATENCY_BUCKETS_MS
from aiconsole.platform.money import MICROS_PER_USD

LATENCY_BUCKETS_S = tuple(ms / 1000 for ms in LATENCY_BUCKETS_MS)


class WorkerMetrics:
    """Queue depth, photos processed, errors by kind, provider latency and cost, for one worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("aiconsole_queue_depth", "Photos in the queue by status (all organizations).",
                                 ["status"], registry=r)
        self.processed = Counter("aiconsole_photos_processed", "Photos this worker recorded, by final status.",
                                 ["provider", "status"], registry=r)
        self.errors = Counter("aiconsole_provider_errors", "Failed provider calls by error kind.",
                              ["provider", "kind"], registry=r)
        self.retries = Counter("aiconsole_photo_retries", "Photos scheduled for another attempt.",
                               ["provider", "kind"], registry=r)
        self.latency = Histogram("aiconsole_provider_latency_seconds", "Wall time of provider calls.",
                                 ["provider"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.cost = Counter("aiconsole_cost_usd", "Provider cost of recorded results, in USD.", ["provider"],
                            registry=r)
        self.in_flight = Gauge("aiconsole_worker_in_flight", "Photos this worker holds right now.", registry=r)
        self.lost_leases = Counter("aiconsole_lost_leases", "Results dropped because the lease had moved on.",
                                   registry=r)
        self.routing = Counter("aiconsole_routing_decisions", "Provider routing decisions.", ["provider", "kind"],
                               registry=r)
        self.breaker_open = Gauge("aiconsole_circuit_open", "1 while a provider's circuit breaker is open.",
                                  ["provider"], registry=r)
        self._server: Any = None
        self._lock = threading.Lock()

    def observe_call(self, *, provider: str, seconds: float, error_kind: str | None) -> None:
        """Count one provider call: its latency and, when it failed, its error kind."""
        self.latency.labels(provider=provider).observe(max(0.0, seconds))
        if error_kind is not None:
            self.errors.labels(provider=provider, kind=error_kind).inc()

    def observe_recorded(self, *, provider: str, status: str, cost_micros: int) -> None:
        """Count one recorded photo and its cost."""
        self.processed.labels(provider=provider, status=status).inc()
        if cost_micros:
            self.cost.labels(provider=provider).inc(cost_micros / MICROS_PER_USD)

    def set_queue_depth(self, counts: Mapping[str, int], statuses: Iterable[str] = ("pending", "processing")) -> None:
        """Publish the queue's size per status (missing statuses read 0)."""
        for status in statuses:
            self.queue_depth.labels(status=status).set(int(counts.get(status, 0)))

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Start the /metrics HTTP endpoint in a daemon thread; returns the bound port (0 picks a free one)."""
        with self._lock:
            if self._server is None:
                self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
            return int(self._server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint if it runs."""
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """One sample's current value (0 when it was never set), e.g. value('aiconsole_cost_usd_total')."""
        got = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if got is None else float(got)
