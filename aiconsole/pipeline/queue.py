"""The photo queue: claim in batches under a lease, heartbeats, lease extension, release.

`photos` is the queue. A claim moves pending photos to processing with this worker's lease in one
statement: on PostgreSQL `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING`,
so concurrent workers never wait on or double-claim a row; on SQLite the same UPDATE ... RETURNING inside
BEGIN IMMEDIATE, which serializes writers across processes. Attempts are counted by the claim itself.
Recording an outcome is `aiconsole.pipeline.recording`'s; returning expired leases `aiconsole.pipeline.reaper`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Photo, PipelineConfig, Worker
from aiconsole.platform.db.sql import rowcount
from aiconsole.platform.db.types import UTCDateTime, utcnow
from aiconsole.platform.errors import ValidationFailed

PHOTOS = cast(Table, Photo.__table__)
CONFIG = cast(Table, PipelineConfig.__table__)


def lease_expired(now: datetime) -> ColumnElement[bool]:
    """The one definition of a stuck photo: in processing, its lease ended (or was never set) by `now`."""
    p = PHOTOS.c
    return and_(p.status == "processing", or_(p.lease_expires_at.is_(None), p.lease_expires_at < now))
WORKERS = cast(Table, Worker.__table__)
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class ClaimedPhoto:
    """A photo this worker holds under a lease; `attempts` counts this claim (1 on the first)."""

    id: int
    organization_id: int
    storage_uri: str
    content_type: str
    width: int
    height: int
    sha256: str
    attempts: int
    created_at: datetime
    lease_expires_at: datetime


@contextmanager
def write_session() -> Iterator[Session]:
    """A service session whose transaction holds the write lock from its first statement on SQLite.

    A deferred SQLite transaction that reads and then writes can fail at once with "database is locked"
    when another process committed in between; BEGIN IMMEDIATE waits (busy_timeout) for the lock instead.
    On PostgreSQL it is a plain service_session.
    """
    with service_session() as session:
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ValidationFailed(f"{name} is {value}; it must be at least 1.")


@lru_cache(maxsize=8)
def _claim_statement(dialect: str, by_org: bool) -> Any:
    """The claim UPDATE with every value a bound parameter, built once per dialect (it runs many times a second)."""
    p = PHOTOS.c
    now = bindparam("now", type_=UTCDateTime())
    paused = select(CONFIG.c.organization_id).where(CONFIG.c.paused.is_(True))
    candidates = (
        select(p.id)
        .where(p.status == "pending", or_(p.next_attempt_at.is_(None), p.next_attempt_at <= now),
               p.organization_id.not_in(paused))
        .order_by(p.priority.desc(), p.created_at, p.id)
        .limit(bindparam("limit", type_=Integer()))
    )
    if by_org:
        candidates = candidates.where(p.organization_id.in_(bindparam("orgs", expanding=True)))
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(PHOTOS)
        .where(p.id.in_(candidates))
        .values(status="processing", attempts=p.attempts + 1, lease_owner=bindparam("worker", type_=String()),
                lease_expires_at=bindparam("expires", type_=UTCDateTime()), started_at=now, updated_at=now)
        .returning(p.id, p.organization_id, p.storage_uri, p.content_type, p.width, p.height, p.sha256,
                   p.attempts, p.created_at, p.lease_expires_at, p.priority)
    )


def claim_batch(*, worker_id: str, limit: int, lease_seconds: int, now: datetime | None = None,
                organization_ids: Sequence[int] | None = None) -> list[ClaimedPhoto]:
    """Lease up to `limit` due pending photos of unpaused orgs, highest priority then oldest first."""
    _positive("limit", limit)
    _positive("lease_seconds", lease_seconds)
    if organization_ids is not None and not organization_ids:
        return []
    now = now or utcnow()
    params: dict[str, Any] = {"now": now, "limit": limit, "worker": worker_id,
                              "expires": now + timedelta(seconds=lease_seconds)}
    if organization_ids is not None:
        params["orgs"] = [int(o) for o in organization_ids]
    with write_session() as s:
        stmt = _claim_statement(s.get_bind().dialect.name, organization_ids is not None)
        rows = list(s.execute(stmt, params))
    # RETURNING comes back in no particular order; hand photos out in claim order.
    rows.sort(key=lambda r: (-r.priority, r.created_at, r.id))
    return [ClaimedPhoto(id=r.id, organization_id=r.organization_id, storage_uri=r.storage_uri,
                         content_type=r.content_type, width=r.width, height=r.height, sha256=r.sha256,
                         attempts=r.attempts, created_at=r.created_at, lease_expires_at=r.lease_expires_at)
            for r in rows]


def heartbeat(*, worker_id: str, hostname: str, pid: int, concurrency: int, processed: int,
              status: str = "running", last_error: str | None = None, now: datetime | None = None) -> None:
    """Insert or refresh this worker's row in `workers` (Live Status shows workers by their last heartbeat).

    `status` is running, unhealthy (then `last_error` says why) or stopped.
    """
    now = now or utcnow()
    values = {"id": worker_id, "hostname": hostname[:255], "pid": pid, "concurrency": concurrency,
              "status": status, "processed_count": processed, "started_at": now, "last_heartbeat_at": now,
              "last_error": last_error[:MAX_ERROR_CHARS] if last_error else None}
    with service_session() as s:
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert(WORKERS).values(**values)
        s.execute(stmt.on_conflict_do_update(
            index_elements=[WORKERS.c.id],
            set_={k: stmt.excluded[k] for k in ("hostname", "pid", "concurrency", "status", "processed_count",
                                                "last_heartbeat_at", "last_error")},
        ))


def _held(worker_id: str, photo_ids: Sequence[int]) -> Any:
    p = PHOTOS.c
    return and_(p.id.in_([int(i) for i in photo_ids]), p.lease_owner == worker_id, p.status == "processing")


def extend_leases(*, worker_id: str, photo_ids: Sequence[int], lease_seconds: int,
                  now: datetime | None = None) -> int:
    """Push the lease of photos this worker still holds to now + lease_seconds; returns how many it holds."""
    _positive("lease_seconds", lease_seconds)
    if not photo_ids:
        return 0
    now = now or utcnow()
    with write_session() as s:
        return rowcount(s.execute(
            update(PHOTOS).where(_held(worker_id, photo_ids))
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        ))


def release(*, worker_id: str, photo_ids: Sequence[int], now: datetime | None = None) -> int:
    """Give held photos back to the queue untouched (graceful stop): pending, this attempt not counted."""
    if not photo_ids:
        return 0
    now = now or utcnow()
    p = PHOTOS.c
    with write_session() as s:
        return rowcount(s.execute(
            update(PHOTOS).where(_held(worker_id, photo_ids))
            .values(status="pending", attempts=case((p.attempts > 0, p.attempts - 1), else_=0),
                    lease_owner=None, lease_expires_at=None, started_at=None, updated_at=now)
        ))


def error_text(kind: str, message: str) -> str:
    """The photo's last_error for a failed attempt: "kind: message", bounded in length."""
    return f"{kind}: {message}"[:MAX_ERROR_CHARS]
