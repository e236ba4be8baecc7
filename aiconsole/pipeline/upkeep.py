"""A worker's two background threads: the heartbeat (and longer leases for the photos it holds) and
maintenance (reaper, queue depth, provider health, lifting its organizations' pauses).

Both meet Redis and database faults like the rest of the worker: an `InfrastructureFault` goes to the
worker's `FaultWatch` (one log line per change there, no traceback here), and what cannot work meanwhile
waits: nothing is written while the database is down, and the tasks that call providers (health and
circuit probes, which go through the rate limiter) wait while Redis is down, so a probe failing for that
never blames the provider.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from aiconsole.pipeline import config_row
from aiconsole.pipeline import queue as q
from aiconsole.pipeline.budget import BudgetGuard
from aiconsole.pipeline.faults import FaultWatch
from aiconsole.pipeline.metrics import WorkerMetrics
from aiconsole.pipeline.provider_health import HealthReporter
from aiconsole.pipeline.reaper import reap_once
from aiconsole.pipeline.worker_config import WorkerOptions
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.db.types import utcnow

log = logging.getLogger(__name__)


class Heartbeat:
    """The worker's row in `workers`: running, unhealthy (with what is down) or stopped; and its leases."""

    def __init__(self, worker_id: str, *, concurrency: int, lease_seconds: int, interval_s: float | None,
                 faults: FaultWatch, held_ids: Callable[[], list[int]], processed: Callable[[], int]) -> None:
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.interval_s = interval_s or max(0.5, lease_seconds / 3)
        self.hostname = socket.gethostname()
        self._faults = faults
        self._held_ids = held_ids
        self._processed = processed
        self._wake = threading.Event()
        self._stopping = False

    def wake(self) -> None:
        """Beat now (Redis or the database went down or came back: health shows it at once)."""
        self._wake.set()

    def stop(self) -> None:
        """End `loop` (the worker writes its last beat, "stopped", itself)."""
        self._stopping = True
        self._wake.set()

    def beat(self, status: str | None = None) -> None:
        """Write the row: `status`, or running / unhealthy as the fault watch says."""
        if self._faults.down("database"):
            return  # nowhere to write (the schema may not even exist yet); the row's staleness tells
        reason = self._faults.reason()
        try:
            q.heartbeat(worker_id=self.worker_id, hostname=self.hostname, pid=os.getpid(),
                        concurrency=self.concurrency, processed=self._processed(),
                        status=status or ("unhealthy" if reason else "running"), last_error=reason)
        except Exception as exc:
            if not self._faults.check(exc):
                log.exception("worker %s: heartbeat failed", self.worker_id)

    def loop(self) -> None:
        """Beat and extend the leases of held photos every interval (or when woken) until stopped."""
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stopping:
                return
            if self._faults.down("database"):
                continue
            self.beat()
            ids = self._held_ids()
            if ids:
                try:
                    q.extend_leases(worker_id=self.worker_id, photo_ids=ids, lease_seconds=self.lease_seconds)
                except Exception as exc:
                    if not self._faults.check(exc):
                        log.exception("worker %s: extending leases failed", self.worker_id)


class Maintenance:
    """The periodic tasks: reaper (PostgreSQL: one worker at a time), queue depth, health, pauses to lift."""

    def __init__(self, worker_id: str, *, options: WorkerOptions, breaker_open_s: float, faults: FaultWatch,
                 health: HealthReporter, budget: BudgetGuard, metrics: WorkerMetrics) -> None:
        self.worker_id = worker_id
        self.breaker_open_s = breaker_open_s
        self._faults = faults
        self._health = health
        self._budget = budget
        self._metrics = metrics
        o = options
        # (every, task, whether it calls providers through the rate limiter, so needs Redis)
        self._tasks: list[tuple[float, Callable[[], Any], bool]] = [
            (o.reap_interval_s, reap_once, False), (o.queue_depth_interval_s, self.queue_depth, False),
            (o.health_interval_s, health.write_health, True), (o.resume_check_interval_s, self.resume_paused, True)]

    def loop(self, stop: threading.Event) -> None:
        """Run each task when due until `stop` is set."""
        due = [time.monotonic() + min(1.0, every) for every, _, _ in self._tasks]
        while not stop.wait(0.2):
            now = time.monotonic()
            for i, (every, task, calls) in enumerate(self._tasks):
                if now < due[i] or self._faults.down("database") or (calls and self._faults.down("Redis")):
                    continue
                due[i] = now + every
                try:
                    task()
                except Exception as exc:
                    if not self._faults.check(exc):
                        log.exception("worker %s: %s failed", self.worker_id, getattr(task, "__name__", task))

    def queue_depth(self) -> None:
        """Pending and processing photos of every organization, for Prometheus."""
        with service_session() as s:
            counts = dict(s.execute(select(Photo.status, func.count()).where(
                Photo.status.in_(("pending", "processing"))).group_by(Photo.status)).all())
        self._metrics.set_queue_depth({str(k): int(v) for k, v in counts.items()})

    def resume_paused(self) -> None:
        """Probe the circuits that paused organizations once due; lift budget pauses that no longer apply."""
        with service_session() as s:
            pauses = config_row.auto_resumable(s)
        for org, kind, paused_at in pauses:
            if kind == config_row.CIRCUIT_OPEN:
                reopen = (paused_at or utcnow()) + timedelta(seconds=self.breaker_open_s)
                if utcnow() >= reopen:
                    self._health.probe_circuit(org)
            else:
                self._budget.resume_if_clear(org)
