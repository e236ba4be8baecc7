"""A worker's tunables (`WorkerOptions`, beyond its shape: concurrency, batch, lease, poll) and what a run did
(`WorkerReport`); read by the worker and its upkeep threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiconsole.pipeline.calls import CallOptions
from aiconsole.pipeline.recording import RecordReport


@dataclass(frozen=True)
class WorkerOptions:
    """Intervals and limits of a worker beyond the basic shape (concurrency, batch, lease, poll)."""

    stop_timeout_s: float = 30.0
    record_flush_s: float = 0.1
    heartbeat_interval_s: float | None = None  # default: a third of the lease
    reap_interval_s: float = 15.0
    queue_depth_interval_s: float = 10.0
    health_interval_s: float = 60.0
    idle_probe_interval_s: float = 900.0
    resume_check_interval_s: float = 10.0
    context_ttl_s: float = 5.0
    infra_retry_s: float = 1.0  # first retry after Redis or the database failed; doubles each time
    infra_max_retry_s: float = 10.0  # a probe every 10 s costs nothing and resumes soon after the fault ends
    calls: CallOptions = field(default_factory=CallOptions)
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    install_signal_handlers: bool = True


@dataclass
class WorkerReport:
    """What a worker did between start and stop."""

    claimed: int = 0
    recorded: int = 0
    retried: int = 0
    failed: int = 0
    lost_lease: int = 0
    released: int = 0
    cost_micros: int = 0

    def add(self, r: RecordReport) -> None:
        """Add one record_batch report."""
        self.recorded += r.recorded
        self.retried += r.retried
        self.failed += r.failed
        self.lost_lease += r.lost_lease
        self.cost_micros += r.cost_micros
