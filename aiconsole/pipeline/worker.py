"""The worker: claim photos, call providers concurrently, record results; heartbeats, reaper, graceful stop.

The main thread claims whole batches (`queue.claim_batch`) and keeps up to `2 x concurrency` photos (at
least two batches) in hand, so the call threads never wait for a claim. Call threads run `Caller.process` (variant,
route, rate limit, provider, retry decision) and hand back outcomes; the main thread records them
together (`recording.record_batch`: one lease-fenced transaction) once a batch is ready or
`record_flush_s` has passed. Beside it run `upkeep`'s heartbeat thread (the `workers` row, longer leases
for every photo in hand) and maintenance thread (reaper, queue depth, provider health, lifting pauses).

Redis or the database failing (`faults`: an `InfrastructureFault`) is not the photos' fault: the worker
claims nothing, gives back what it holds without counting the attempt (`Held`), keeps what it could not
record for when the database answers, logs one line per change and per retry, heartbeats "unhealthy"
with the reason, and resumes by itself once the probe of the failed part succeeds. A database that is
down (or not migrated) at start is waited for the same way.

SIGTERM/SIGINT (or `stop()`): no more claims; photos not started go back to the queue at once; calls in
flight get `stop_timeout_s` to finish and be recorded; whatever is still running then is released too
(its attempt not counted). A second signal releases everything immediately.

Scale out by running more workers, on as many machines as you like, against one PostgreSQL: claims use
SKIP LOCKED, results are fenced by the lease, rate limits are shared through Redis (AICONSOLE_REDIS_URL).
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import signal
import sys
import threading
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from types import FrameType

from aiconsole.pipeline import config_row
from aiconsole.pipeline import queue as q
from aiconsole.pipeline.budget import BudgetGuard
from aiconsole.pipeline.calls import Held, ProviderFactory, Released
from aiconsole.pipeline.context import ContextCache, OrgContext
from aiconsole.pipeline.faults import FaultWatch, database_ready, probes
from aiconsole.pipeline.metrics import WorkerMetrics
from aiconsole.pipeline.parallel import SlottedCaller
from aiconsole.pipeline.provider_health import HealthReporter
from aiconsole.pipeline.recording import Outcome, RecordReport, record_batch
from aiconsole.pipeline.upkeep import Heartbeat, Maintenance
from aiconsole.pipeline.worker_config import WorkerOptions, WorkerReport
from aiconsole.platform.db.models import DEFAULT_PARALLEL_CALLS, MAX_PARALLEL_CALLS
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import infrastructure_fault
from aiconsole.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Worker:
    """One worker process's engine; `run()` blocks until `stop()` or SIGTERM/SIGINT."""

    def __init__(self, worker_id: str, concurrency: int | None, batch_size: int, lease_seconds: int,
                 poll_interval_s: float, settings: Settings | None = None, *, options: WorkerOptions | None = None,
                 provider_factory: ProviderFactory | None = None, metrics: WorkerMetrics | None = None) -> None:
        if min(1 if concurrency is None else concurrency, batch_size, lease_seconds) < 1 or poll_interval_s <= 0:
            raise ValueError("concurrency, batch_size and lease_seconds must be >= 1 and poll_interval_s > 0")
        self.worker_id = worker_id
        # None: call threads grow to the organizations' parallel calls per worker; N: N threads, and no org gets more.
        self.ceiling = concurrency
        self.concurrency = concurrency or DEFAULT_PARALLEL_CALLS
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_interval_s = poll_interval_s
        # The queue and recorder use the process-wide settings; so does everything here.
        self.settings = settings or get_settings()
        self.options = options or WorkerOptions()
        self.metrics = metrics or WorkerMetrics()
        self.caller = SlottedCaller(ceiling=concurrency, worker_id=worker_id, settings=self.settings,
                                    metrics=self.metrics, options=self.options.calls,
                                    provider_factory=provider_factory)
        self.contexts = ContextCache(ttl_s=self.options.context_ttl_s)
        self.budget = BudgetGuard()
        self.health = HealthReporter(worker_id=worker_id, caller=self.caller, contexts=self.contexts,
                                     idle_probe_interval_s=self.options.idle_probe_interval_s)
        self.report = WorkerReport()
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        # A fault going away or coming up makes the heartbeat write it at once.
        self.faults = FaultWatch(worker_id, retry_s=self.options.infra_retry_s,
                                 max_retry_s=self.options.infra_max_retry_s, on_change=lambda: self.heartbeat.wake())
        self._probes = probes(self.settings.redis_url)
        self.heartbeat = Heartbeat(worker_id, concurrency=self.concurrency, lease_seconds=lease_seconds,
                                   interval_s=self.options.heartbeat_interval_s, faults=self.faults,
                                   held_ids=self.held_ids, processed=lambda: self.report.recorded)
        self.maintenance = Maintenance(worker_id, options=self.options,
                                       breaker_open_s=self.options.calls.breaker_open_s, faults=self.faults,
                                       health=self.health, budget=self.budget, metrics=self.metrics)
        self._held: dict[int, q.ClaimedPhoto] = {}
        self._tasks: stdlib_queue.Queue[tuple[q.ClaimedPhoto, OrgContext, datetime] | None] = stdlib_queue.Queue()
        self._done: stdlib_queue.Queue[tuple[int, Outcome | Released | Held]] = stdlib_queue.Queue()
        self._ready: list[Outcome] = []
        self._released: list[Released] = []
        self._giving_back: list[int] = []  # photos to release uncounted, kept while the database is down
        self._ready_since: float | None = None
        # Photos in hand: enough that call threads never wait for a claim, and a batch being recorded while
        # the next one is processed.
        self._capacity = max(2 * self.concurrency, 2 * batch_size)
        self._callers: list[threading.Thread] = []

    # ---------------------------------------------------------------------------------------- control

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the worker to stop: no new claims, in-flight calls get `timeout_s` (default: the option)."""
        if timeout_s is not None:
            self.options = replace(self.options, stop_timeout_s=max(0.0, timeout_s))
        if self._stop.is_set():
            self._abort.set()
        self._stop.set()
        self.heartbeat.stop()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.warning("worker %s: %s received, stopping (again to release everything now)", self.worker_id,
                    signal.Signals(signum).name)
        self.stop()

    def held_ids(self) -> list[int]:
        """Photos this worker holds right now."""
        with self._lock:
            return list(self._held)

    # ---------------------------------------------------------------------------------------- the loop

    def run(self) -> WorkerReport:
        """Process photos until stopped; returns what was done."""
        # A call thread that took a rate-limit slot must send now, not after the main thread's next 5 ms
        # of recording: a 1 ms switch interval keeps slot-to-arrival delays (and so the rate the provider
        # sees) within the limiter's guard.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        if self.options.install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        if self.options.metrics_port is not None:
            port = self.metrics.serve(self.options.metrics_port, self.options.metrics_addr)
            log.info("worker %s: metrics on http://%s:%s/metrics", self.worker_id, self.options.metrics_addr, port)
        try:
            database_ready()
        except Exception as exc:
            if not self.faults.check(exc):
                raise
        self.heartbeat.beat()
        threads = [threading.Thread(target=self.heartbeat.loop, name=f"{self.worker_id}-heartbeat", daemon=True),
                   threading.Thread(target=self.maintenance.loop, args=(self._stop,), name=f"{self.worker_id}-maint",
                                    daemon=True)]
        for t in threads:
            t.start()
        self._start_callers(self.concurrency)
        try:
            while not self._stop.is_set():
                if self.faults.down():
                    self._ride_out()
                    continue
                claimed = self._claim()
                self._collect(self.options.record_flush_s if self._held else 0.0)
                self._flush(force=not self._held)
                if not claimed and not self._held and not self._ready:
                    self._stop.wait(self.poll_interval_s)
        finally:
            self._shutdown()
            self.heartbeat.stop()
            for _ in self._callers:
                self._tasks.put(None)
            for t in threads:
                t.join(timeout=5)
            self.metrics.close()
            self._stopped.set()
        return self.report

    def _start_callers(self, n: int) -> None:
        # Daemon call threads: a call still hanging after the stop timeout must not keep the process alive.
        for i in range(len(self._callers), n):
            t = threading.Thread(target=self._call_loop, name=f"{self.worker_id}-call-{i}", daemon=True)
            t.start()
            self._callers.append(t)
        self.concurrency = self.heartbeat.concurrency = len(self._callers)
        self._capacity = max(2 * self.concurrency, 2 * self.batch_size)

    def parallel_calls(self, organization_id: int, provider: str | None = None) -> int:
        """How many of the organization's photos (or calls to `provider`) this worker runs at once."""
        return self.caller.parallel_calls(self.contexts.ensure({organization_id})[organization_id], provider)

    def _claim(self) -> int:
        with self._lock:
            room = self._capacity - len(self._held)
        # Whole batches: a claim is a transaction, and many small ones cost more than they bring.
        if room < self.batch_size and self._held:
            return 0
        try:
            photos = q.claim_batch(worker_id=self.worker_id, limit=min(self.batch_size, room),
                                   lease_seconds=self.lease_seconds)
        except Exception as exc:
            if not self.faults.check(exc):
                log.exception("worker %s: claim failed; retrying after the poll interval", self.worker_id)
                self._stop.wait(self.poll_interval_s)
            return 0
        if not photos:
            return 0
        claimed_at = utcnow()
        self.report.claimed += len(photos)
        try:
            contexts = self.contexts.ensure({p.organization_id for p in photos})
            over = self._over_budget(contexts)
            if self.ceiling is None:
                self._start_callers(min(MAX_PARALLEL_CALLS, max(c.parallel_calls for c in contexts.values())))
        except Exception as exc:
            if not self.faults.check(exc):
                raise
            self._give_back([p.id for p in photos])
            return 0
        if over:
            self._give_back([p.id for p in photos if p.organization_id in over])
            photos = [p for p in photos if p.organization_id not in over]
        with self._lock:
            for photo in photos:
                self._held[photo.id] = photo
            self.metrics.in_flight.set(len(self._held))
        for photo in photos:
            self._tasks.put((photo, contexts[photo.organization_id], claimed_at))
        return len(photos)

    def _over_budget(self, contexts: dict[int, OrgContext]) -> set[int]:
        # Checked before any call: a batch claimed just after another worker used up the budget is released.
        return {org for org, ctx in contexts.items() if ctx.has_budget and self.budget.check(org).reached}

    def _call_loop(self) -> None:
        while (task := self._tasks.get()) is not None:
            photo, ctx, claimed_at = task
            with self._lock:
                if photo.id not in self._held:
                    continue  # released (shutdown) before a thread got to it
            fault = self.faults.current()
            if fault is not None:  # no call while Redis or the database is down: the photo goes back uncounted
                self._done.put((photo.id, Held(photo, fault)))
                continue
            self._run_one(photo, ctx, claimed_at)

    def _run_one(self, photo: q.ClaimedPhoto, ctx: OrgContext, claimed_at: datetime) -> None:
        try:
            out: Outcome | Released | Held = self.caller.process(photo, ctx, claimed_at=claimed_at)
        except Exception as exc:  # Caller.process handles a photo's own problems; this is a bug in it
            fault = infrastructure_fault(exc)
            if fault is not None:
                out = Held(photo, fault)
            else:
                log.exception("worker %s: photo %s crashed its call thread", self.worker_id, photo.id)
                out = self.caller.crash_outcome(photo, ctx, exc, claimed_at)
        self._done.put((photo.id, out))

    def _collect(self, timeout_s: float) -> None:
        try:
            first = self._done.get(timeout=timeout_s) if timeout_s > 0 else self._done.get_nowait()
        except stdlib_queue.Empty:
            return
        items = [first]
        while True:
            try:
                items.append(self._done.get_nowait())
            except stdlib_queue.Empty:
                break
        held: list[Held] = []
        with self._lock:
            for photo_id, out in items:
                if self._held.pop(photo_id, None) is None:
                    continue  # released during shutdown; its late answer is dropped
                if isinstance(out, Released):
                    self._released.append(out)
                elif isinstance(out, Held):
                    held.append(out)
                else:
                    self._ready.append(out)
            self.metrics.in_flight.set(len(self._held))
        if self._ready and self._ready_since is None:
            self._ready_since = time.monotonic()
        for h in held:
            self.faults.report(h.fault)
        if held:
            self._give_back([h.photo.id for h in held])

    def _give_back(self, photo_ids: list[int]) -> None:
        """Release photos with their attempt not counted; kept for later while the database is down."""
        self._giving_back.extend(photo_ids)
        if not self._giving_back or self.faults.down("database"):
            return
        try:
            self.report.released += q.release(worker_id=self.worker_id, photo_ids=self._giving_back)
        except Exception as exc:
            if not self.faults.check(exc):
                raise
            return
        self._giving_back = []

    def _ride_out(self) -> None:
        """A step while Redis or the database is down: hold photos, record what can be, probe when due."""
        self._collect(0.05)
        if not self.faults.down("database"):
            self._flush(force=True)
        wait = self.faults.wait_s()
        if wait > 0:
            self._stop.wait(min(wait, 0.2))
        else:
            self.faults.retry(self._probes)

    def _flush(self, *, force: bool) -> None:
        if self._giving_back:  # held while the database was down
            self._give_back([])
        if self._released:
            self._release_unroutable()
        if not self._ready:
            return
        age = time.monotonic() - (self._ready_since or time.monotonic())
        if not force and len(self._ready) < self.batch_size and age < self.options.record_flush_s:
            return
        batch, self._ready, self._ready_since = self._ready, [], None
        try:
            report = record_batch(worker_id=self.worker_id, outcomes=batch)
        except Exception as exc:
            if self.faults.check(exc):
                # Recorded once the database answers; the lease fence drops any photo another worker took.
                self._ready, self._ready_since = batch + self._ready, time.monotonic()
                return
            # The photos stay leased to us until the reaper returns them; nothing is lost or doubled.
            log.exception("worker %s: recording %d outcomes failed", self.worker_id, len(batch))
            return
        self.report.add(report)
        self._count(batch, report)
        try:
            for org in {o.photo.organization_id for o in batch if o.result is not None}:
                ctx = self.contexts.known().get(org)
                if ctx is not None and ctx.has_budget:
                    self.budget.check(org)
        except Exception as exc:
            if not self.faults.check(exc):
                raise

    def _count(self, batch: list[Outcome], report: RecordReport) -> None:
        # Per-outcome labels; when a lease was lost the recorder does not say whose, so the counts
        # may include up to `lost_lease` photos another worker recorded (counted in aiconsole_lost_leases).
        self.metrics.lost_leases.inc(report.lost_lease)
        for o in batch:
            if not o.final:
                continue
            status = "failed" if o.result is None else "succeeded"
            cost = o.result.cost_micros if o.result is not None else 0
            self.metrics.observe_recorded(provider=o.provider, status=status, cost_micros=cost)

    def _release_unroutable(self) -> None:
        released, self._released = self._released, []
        by_org: dict[int, list[Released]] = defaultdict(list)
        for r in released:
            by_org[r.photo.organization_id].append(r)
        for org, items in by_org.items():
            try:
                self.report.released += q.release(worker_id=self.worker_id, photo_ids=[r.photo.id for r in items])
                circuit = items[0].pause_kind == config_row.CIRCUIT_OPEN
                if circuit and not self.health.circuit_opened(org, items[0].provider):
                    continue  # a probe elsewhere closed this circuit after this worker's breaker opened
                if config_row.auto_pause_org(org, kind=items[0].pause_kind, reason=items[0].reason):
                    log.warning("worker %s: paused organization %s: %s", self.worker_id, org, items[0].reason)
            except Exception as exc:
                if not self.faults.check(exc):
                    raise
                self._released.extend(items)  # again once the database answers (release and pause are idempotent)

    # ---------------------------------------------------------------------------------------- shutdown

    def _shutdown(self) -> None:
        not_started: list[int] = []
        while True:
            try:
                task = self._tasks.get_nowait()
            except stdlib_queue.Empty:
                break
            if task is not None:
                not_started.append(task[0].id)
        with self._lock:
            for pid in not_started:
                self._held.pop(pid, None)
        self._give_back(not_started)
        deadline = time.monotonic() + (0.0 if self._abort.is_set() else self.options.stop_timeout_s)
        while self._held and not self._abort.is_set() and time.monotonic() < deadline:
            self._collect(min(0.1, max(0.0, deadline - time.monotonic())))
        self._collect(0.0)
        self._flush(force=True)
        leftover = self.held_ids()
        if leftover:
            # Still running after the timeout: give them back; their answers, if any, are dropped.
            with self._lock:
                self._held.clear()
            self._give_back(leftover)
        if self._giving_back or self._ready:
            log.warning("worker %s: stopping with the database down: %d photos not given back, %d results not "
                        "recorded; the reaper returns them when their leases expire", self.worker_id,
                        len(self._giving_back), len(self._ready))
        self.heartbeat.beat("stopped")
        log.info("worker %s stopped: %s", self.worker_id, self.report)
