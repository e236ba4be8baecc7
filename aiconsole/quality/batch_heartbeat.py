"""A running batch's heartbeat, and what reads do with a batch whose heartbeat went stale.

A batch runs in the process that started it (the admin's page session, a script). Every chunk stamps
`heartbeat_at` first thing in its own transaction, and only while the batch is still 'running'. When that
process dies (the session closed, the server restarted) nothing finishes the batch, so reads of batches
(`expire_stale`, called by the list and by a single batch's read) mark a running batch whose last beat is
older than STALE_AFTER as 'interrupted', keep why in its error, and audit it. What it changed until then is
kept as its items, so its undo restores exactly that; running the same batch again does the rest (rows it
changed no longer match their template).

The mark and a chunk cannot both win: the mark is one UPDATE that re-checks the stale beat, and a chunk's
beat is one UPDATE that re-checks 'running', both on the batch's row (a row lock on PostgreSQL, the write
lock on SQLite). A chunk that finds its batch interrupted raises BatchInterrupted, so its transaction changes
nothing and the run stops without finishing the batch again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import CorrectionBatch
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.settings import Settings
from aiconsole.quality.batch_select import describe
from aiconsole.quality.review_queue import write_session

BATCHES = cast(Table, CorrectionBatch.__table__)
STALE_AFTER = timedelta(minutes=10)  # a chunk takes seconds; ten minutes without one is a dead process
WATCHER = "batch-watch"  # the system actor that audits an interruption
INTERRUPTED = (f"It made no progress for over {fmt.plural(int(STALE_AFTER.total_seconds() // 60), 'minute')}: "
               "the process running it stopped (its page session closed or the server restarted). What it "
               "changed until then is kept: undo it to put those rows back, or run the same batch again for "
               "the rest")


class BatchInterrupted(ConflictError):
    """The batch was marked interrupted while this process still ran it (its beat had gone stale)."""


def beat(s: Session, batch_id: int) -> None:
    """Stamp the batch's heartbeat in the chunk's transaction (the wall clock: liveness, not the run's `now`);
    BatchInterrupted when it is no longer running."""
    done = s.execute(update(BATCHES).where(BATCHES.c.id == batch_id, BATCHES.c.status == "running")
                     .values(heartbeat_at=utcnow()))
    if cast(Any, done).rowcount == 0:
        raise BatchInterrupted(f"Batch #{batch_id} was marked interrupted while it ran: {INTERRUPTED}.",
                               hint="Open its row in Past batches to undo it or run it again.")


def last_beat() -> Any:
    """A batch's last sign of life: its heartbeat, else (a batch from before heartbeats) its creation."""
    return func.coalesce(BATCHES.c.heartbeat_at, BATCHES.c.created_at)


def _stale(org: int, cutoff: datetime) -> list[Any]:
    b = BATCHES.c
    return [b.organization_id == org, b.status == "running", last_beat() < cutoff]


def expire_stale(org: int, *, now: datetime | None = None, settings: Settings | None = None) -> list[int]:
    """Mark the organization's running batches whose last beat is older than STALE_AFTER as interrupted,
    each audited; returns their ids. A read first: most calls find none and open no write transaction."""
    cutoff = (now or utcnow()) - STALE_AFTER
    with org_session(org, settings=settings) as s:
        if s.scalar(select(BATCHES.c.id).where(*_stale(org, cutoff)).limit(1)) is None:
            return []
    with write_session(org, settings) as s:
        return _mark(s, org, cutoff)


def _mark(s: Session, org: int, cutoff: datetime) -> list[int]:
    b, stale = BATCHES.c, _stale(org, cutoff)
    found = s.execute(select(BATCHES, last_beat().label("beat")).where(*stale).order_by(b.id)).all()
    marked = []
    for r in found:
        done = s.execute(update(BATCHES).where(b.id == r.id, *stale)
                         .values(status="interrupted", finished_at=r.beat, error=INTERRUPTED))
        if cast(Any, done).rowcount == 0:
            continue  # it beat meanwhile: alive after all
        what = describe(r.template, dict(r.params or {}))
        audit.record(s, actor=Actor.system(WATCHER, org), action="quality.batch.interrupted",
                     entity_type="correction_batch", entity_id=r.id,
                     before={"status": "running", "heartbeat_at": r.beat.isoformat() if r.beat else None},
                     after={"status": "interrupted", "matched": r.matched, "processed": r.processed,
                            "changed": r.changed, "failed": r.failed},
                     summary=f"Batch #{r.id} ({what}) was interrupted after {fmt.count(r.processed)} of "
                             f"{fmt.count(r.matched)} rows ({fmt.count(r.changed)} changed): no progress for over "
                             f"{fmt.plural(int(STALE_AFTER.total_seconds() // 60), 'minute')}")
        marked.append(int(r.id))
    return marked

