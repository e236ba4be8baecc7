"""What a worker knows of its infrastructure (Redis, the database): working, or down since when, and when to
look again.

Any thread that meets an `InfrastructureFault` reports it here; the first report of a component logs one
line and starts the back-off (`retry_s`, doubling up to `max_retry_s`). While anything is down the worker
claims nothing and holds its photos (see `worker`); its main thread calls `retry` when one is due, which
runs the component's probe and logs one line per retry with the next delay, or one line when it answers
again. No traceback: the fault is expected and its first line says all there is to say. The heartbeat
carries `reason()` so system health shows the worker as unhealthy and why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from alembic.script.revision import ResolutionError
from sqlalchemy import text

from aiconsole.pipeline import rate_limit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.db.engine import get_service_engine
from aiconsole.platform.errors import InfrastructureFault, infrastructure_fault
from aiconsole.platform.migrate import pending_revisions

log = logging.getLogger(__name__)

Probe = Callable[[], None]  # returns when the component works, raises when it does not


@dataclass
class _Down:
    fault: InfrastructureFault
    since: float
    delay_s: float
    next_at: float
    retries: int = 0


class FaultWatch:
    """Infrastructure faults of one worker; thread-safe, on `clock` (monotonic seconds)."""

    def __init__(self, worker_id: str, *, retry_s: float = 1.0, max_retry_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, on_change: Callable[[], None] | None = None) -> None:
        if retry_s <= 0 or max_retry_s < retry_s:
            raise ValueError("retry_s must be > 0 and max_retry_s >= retry_s")
        self.worker_id = worker_id
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        self._clock = clock
        # Called when a component goes down or comes back (the worker heartbeats at once).
        self._on_change = on_change or (lambda: None)
        self._lock = threading.Lock()
        self._down: dict[str, _Down] = {}

    def report(self, fault: InfrastructureFault) -> None:
        """`fault` happened: the first report of its component logs it and starts the back-off."""
        now = self._clock()
        with self._lock:
            down = self._down.get(fault.component)
            if down is not None:
                down.fault = fault  # the latest reason, for the heartbeat; the back-off runs on
                return
            self._down[fault.component] = _Down(fault, now, self.retry_s, now + self.retry_s)
        self._on_change()
        log.warning("worker %s: %s unavailable, holding photos (no attempt counted): %s Retry 1 in %.3g s.",
                    self.worker_id, fault.component, fault.message, self.retry_s)

    def check(self, exc: BaseException) -> bool:
        """Report `exc` if it is an infrastructure fault; whether it was one."""
        fault = infrastructure_fault(exc)
        if fault is not None:
            self.report(fault)
        return fault is not None

    def down(self, component: str | None = None) -> bool:
        """Whether `component` (any, when None) is down."""
        with self._lock:
            return bool(self._down) if component is None else component in self._down

    def current(self) -> InfrastructureFault | None:
        """The fault of the first component that went down (None when everything works)."""
        with self._lock:
            return next((d.fault for d in self._down.values()), None)

    def reason(self) -> str | None:
        """What is down and why, in one line (None when everything works)."""
        with self._lock:
            return "; ".join(d.fault.message for d in self._down.values()) or None

    def wait_s(self) -> float:
        """Seconds until the next retry is due (0: now)."""
        with self._lock:
            if not self._down:
                return 0.0
            return max(0.0, min(d.next_at for d in self._down.values()) - self._clock())

    def retry(self, probes: Mapping[str, Probe]) -> None:
        """Probe each component whose retry is due: clear it when it answers, else back off further."""
        now = self._clock()
        with self._lock:
            due = [(c, d) for c, d in self._down.items() if d.next_at <= now]
        for component, down in due:
            try:
                probes[component]()
            except Exception as exc:  # a probe that breaks otherwise still leaves the component unproven
                fault = infrastructure_fault(exc) or InfrastructureFault(
                    component, f"The {component} check failed ({type(exc).__name__}: {str(exc)[:300]}).")
                with self._lock:
                    down.fault, down.retries = fault, down.retries + 1
                    down.delay_s = min(self.max_retry_s, down.delay_s * 2)
                    down.next_at = self._clock() + down.delay_s
                log.warning("worker %s: %s still unavailable: %s Retry %d in %.3g s.", self.worker_id, component,
                            fault.message, down.retries + 1, down.delay_s)
                continue
            with self._lock:
                self._down.pop(component, None)
            self._on_change()
            log.info("worker %s: %s available again after %.1f s (%d retries); resuming.", self.worker_id,
                     component, self._clock() - down.since, down.retries + 1)


def database_ready() -> None:
    """The database answers and no migration of this code is missing from it; InfrastructureFault otherwise.

    A database migrated further than this code knows (a newer release's revision) counts as ready: the
    newer schema serves older workers during a rolling upgrade.
    """
    engine = get_service_engine()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    # Alembic logs two INFO lines each time it looks; on every retry they would drown the one line that counts.
    alembic_log = logging.getLogger("alembic.runtime.migration")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        pending = pending_revisions(engine)
    except ResolutionError:  # a revision this code does not know: newer, not missing
        return
    finally:
        alembic_log.setLevel(level)
    if pending:
        raise InfrastructureFault("database", f"The database schema lacks {fmt.plural(len(pending), 'migration')} "
                                              f"({', '.join(pending)}).", hint="Run `aiconsole migrate`.")


def probes(redis_url: str | None) -> dict[str, Probe]:
    """The probe of each component a worker depends on."""
    found: dict[str, Probe] = {"database": database_ready}
    if redis_url:
        found["Redis"] = lambda: rate_limit.ping(redis_url)
    return found
