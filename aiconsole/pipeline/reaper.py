"""The reaper: photos whose lease expired (their worker stopped heartbeating) go back to the queue, or fail.

A photo with attempts left returns to pending; one that used the organization's attempt budget
(pipeline_config.max_retries) fails, with a failed result row (attributed to the organization's active
provider: the worker that held it is gone, and with it the record of which provider it was calling).
The photo's earlier error stays in last_error after the lease message. Works in chunks of REAP_CHUNK
photos, one transaction each; on PostgreSQL a worker reaps only while it holds REAPER_LOCK_KEY, so one
worker reaps at a time (`reap_once`). A failed result row the database refuses fails no more than its own
photo (with the reason ahead of the lease message): the chunk runs again row by row (`result_rows`), so the
rest of it is reaped and nothing stays stuck in processing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, String, func, literal, select, text, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from aiconsole.pipeline.queue import CONFIG, MAX_ERROR_CHARS, PHOTOS, lease_expired, write_session
from aiconsole.pipeline.result_rows import again_row_by_row, write_results
from aiconsole.platform.db.engine import get_service_engine
from aiconsole.platform.db.sql import rowcount
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ValidationFailed
from aiconsole.providers.registry import DEFAULT_PROVIDER, default_model

REAP_CHUNK = 1000
REAPER_LOCK_KEY = 0x61693372  # "ai3r": the PostgreSQL advisory lock only one reaping worker holds


@dataclass(frozen=True)
class ReapReport:
    """What the reaper did with expired leases: photos returned to the queue, and photos failed for good."""

    requeued: int
    failed: int


def reap_once(engine: Engine | None = None) -> ReapReport | None:
    """`reap_expired` now; on PostgreSQL only if no other worker is reaping (None when one is)."""
    engine = engine or get_service_engine()
    if engine.dialect.name != "postgresql":
        return reap_expired()
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REAPER_LOCK_KEY}).scalar():
            return None
        try:
            return reap_expired()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REAPER_LOCK_KEY})
            conn.commit()


def reap_expired(*, now: datetime | None = None, max_attempts_default: int = 3) -> ReapReport:
    """Photos whose lease expired go back to pending, or fail after the org's max attempts (see the module).

    `max_attempts_default` is the attempt budget of an organization without a pipeline_config row.
    """
    if max_attempts_default < 1:
        raise ValidationFailed(f"max_attempts_default is {max_attempts_default}; it must be at least 1.")
    now = now or utcnow()
    requeued = failed = 0
    at = now
    while True:
        chunk_requeued, chunk_failed, seen = again_row_by_row(
            lambda one_by_one: _reap_chunk(at, max_attempts_default, one_by_one), "reaper")
        requeued += chunk_requeued
        failed += chunk_failed
        if seen < REAP_CHUNK:
            return ReapReport(requeued=requeued, failed=failed)


def _reap_chunk(now: datetime, max_attempts_default: int, one_by_one: bool) -> tuple[int, int, int]:
    p = PHOTOS.c
    max_attempts = func.coalesce(
        select(CONFIG.c.max_retries).where(CONFIG.c.organization_id == p.organization_id).scalar_subquery(),
        max_attempts_default,
    )
    previous = func.coalesce(literal("; previous error: ") + p.last_error, "")
    attempt = sql_cast(p.attempts, String)
    with write_session() as s:
        # Lock the expired rows first, in id order, skipping rows locked right now: those belong to a worker
        # recording its outcome at this very moment (it was alive after all) or to another reaper.
        ids = list(s.scalars(
            select(p.id).where(lease_expired(now))
            .order_by(p.id).limit(REAP_CHUNK).with_for_update(skip_locked=True)))
        if not ids:
            return 0, 0, 0
        failed = s.execute(
            update(PHOTOS).where(p.id.in_(ids), p.status == "processing", p.attempts >= max_attempts)
            .values(status="failed", lease_owner=None, lease_expires_at=None, completed_at=now, updated_at=now,
                    last_error=func.substr(
                        literal("Lease expired on attempt ") + attempt + " of " + sql_cast(max_attempts, String)
                        + " (its worker stopped heartbeating); no attempts left" + previous, 1, MAX_ERROR_CHARS))
            .returning(p.id, p.organization_id, p.attempts, p.created_at, p.started_at, p.last_error)
        ).all()
        requeued = rowcount(s.execute(
            update(PHOTOS).where(p.id.in_(ids), p.status == "processing")
            .values(status="pending", lease_owner=None, lease_expires_at=None, updated_at=now,
                    last_error=func.substr(
                        literal("Lease expired on attempt ") + attempt + " (its worker stopped heartbeating)"
                        + previous, 1, MAX_ERROR_CHARS))
        ))
        if failed:
            _record_failed(s, rows=failed, now=now, one_by_one=one_by_one)
    return requeued, len(failed), len(ids)


def _record_failed(session: Session, *, rows: Sequence[Row[Any]], now: datetime, one_by_one: bool) -> None:
    """Failed result rows (and their rollups) for the photos given up on, in the reaper's transaction.

    `rows` carry id, organization_id, attempts, created_at, started_at and last_error of each photo.
    """
    orgs = {r.organization_id for r in rows}
    active = {org: (provider, model) for org, provider, model in session.execute(
        select(CONFIG.c.organization_id, CONFIG.c.active_provider, CONFIG.c.active_model)
        .where(CONFIG.c.organization_id.in_(orgs)))}
    results = []
    for r in rows:
        provider, model = active.get(r.organization_id, (DEFAULT_PROVIDER, default_model(DEFAULT_PROVIDER)))
        started = r.started_at or now
        ran_ms = max(0, int((now - started).total_seconds() * 1000))
        results.append({
            "organization_id": r.organization_id, "photo_id": r.id, "ai_provider": provider, "model": model,
            "prompt_version_id": None, "experiment_id": None, "variant": None, "status": "failed", "tags": [],
            "tag_count": 0, "avg_confidence": None, "min_confidence": None, "api_cost_micros": 0,
            "input_tokens": 0, "output_tokens": 0, "units": 0,
            "queue_wait_time_ms": max(0, int((started - r.created_at).total_seconds() * 1000)),
            # No provider answer ever arrived; the time the lost attempt ran is in total_processing_time_ms.
            "provider_response_time_ms": 0, "total_processing_time_ms": ran_ms,
            "retry_count": max(0, r.attempts - 1), "error_kind": "lease_expired", "error": r.last_error,
            "trace": [{"step": "reaper", "outcome": "lease_expired", "attempts": r.attempts, "ms": ran_ms}],
            "worker_id": None, "created_at": now,
        })
    write_results(session, results, {}, now=now, one_by_one=one_by_one)
