"""Recording a batch of outcomes: one transaction, fenced by the lease, bulk statements only.

In order: one UPDATE moves every photo this worker still holds (same lease owner, same attempt) to its new
status and returns their ids; outcomes of photos it no longer holds are dropped, so a worker that lost its
lease writes nothing. Then the result rows, their photo_tags (each tag's verdict from the org's rules) and
the hourly rollups, through `result_rows.write_results`, so the one hot rollup row per org, hour and
provider stays locked only until the commit right after it. When the database refuses one row's values the
transaction runs again row by row, and only that row's photo fails (see `result_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import case, func, literal, select, text, tuple_, update
from sqlalchemy.orm import Session

from aiconsole.pipeline.queue import PHOTOS, ClaimedPhoto, error_text, write_session
from aiconsole.pipeline.result_rows import again_row_by_row, as_json, write_results
from aiconsole.pipeline.rules import RuleSet
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.db.types import UTCDateTime, utcnow
from aiconsole.platform.errors import ProviderError, ValidationFailed

if TYPE_CHECKING:
    from aiconsole.providers.base import ProviderResult


@dataclass(frozen=True)
class Outcome:
    """What the worker hands the recorder for one claimed photo.

    final=True records a result row now: a success (`result`), or a failure that will not be retried
    (`error`). final=False schedules another attempt at `retry_at` and writes no result row.
    For a failure, provider_response_time_ms is the attempt's total_ms (there is no provider answer to time).
    """

    photo: ClaimedPhoto
    result: ProviderResult | None
    error: ProviderError | None
    final: bool
    retry_at: datetime | None
    queue_wait_ms: int
    total_ms: int
    retry_count: int
    provider: str
    model: str
    prompt_version_id: int | None
    experiment_id: int | None
    variant: str | None
    trace: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class RecordReport:
    """recorded: result rows written (successes and final failures); failed: final failures among them;
    retried: photos scheduled for another attempt; lost_lease: outcomes dropped because the lease was gone;
    cost_micros: the cost of the recorded results; unrecordable: photos failed because the database refused
    their result row (counted in failed; recorded counts the failed rows standing in for them)."""

    recorded: int
    lost_lease: int
    retried: int
    failed: int
    cost_micros: int
    unrecordable: int = 0


def _rules(session: Session, organization_ids: set[int]) -> dict[int, RuleSet]:
    configs = session.scalars(select(PipelineConfig).where(PipelineConfig.organization_id.in_(organization_ids)))
    rules = {c.organization_id: RuleSet.from_config(c) for c in configs}
    return {org: rules.get(org) or RuleSet() for org in organization_ids}


def _result_row(o: Outcome, status: str, now: datetime, worker_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "organization_id": o.photo.organization_id, "photo_id": o.photo.id, "ai_provider": o.provider,
        "model": o.model, "prompt_version_id": o.prompt_version_id, "experiment_id": o.experiment_id,
        "variant": o.variant, "status": status, "tags": [], "tag_count": 0, "avg_confidence": None,
        "min_confidence": None, "api_cost_micros": 0, "input_tokens": 0, "output_tokens": 0, "units": 0,
        "queue_wait_time_ms": max(0, int(o.queue_wait_ms)), "provider_response_time_ms": max(0, int(o.total_ms)),
        "total_processing_time_ms": max(0, int(o.total_ms)), "retry_count": int(o.retry_count),
        "error_kind": None, "error": None, "trace": list(o.trace), "worker_id": worker_id, "created_at": now,
    }
    r = o.result
    if r is not None:
        confidences = [t.confidence for t in r.tags]
        row.update(
            ai_provider=r.provider, model=r.model,
            tags=[{"label": t.label, "confidence": t.confidence} for t in r.tags],
            tag_count=len(confidences), api_cost_micros=int(r.cost_micros), input_tokens=int(r.input_tokens),
            output_tokens=int(r.output_tokens), units=int(r.units),
            provider_response_time_ms=max(0, int(r.latency_ms)),
            avg_confidence=sum(confidences) / len(confidences) if confidences else None,
            min_confidence=min(confidences) if confidences else None,
        )
    elif o.error is not None:
        row.update(error_kind=o.error.kind, error=o.error.message)
    return row


def _check(outcomes: Sequence[Outcome]) -> None:
    ids = [o.photo.id for o in outcomes]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("The batch has two outcomes for the same photo.",
                               hint="Hand record_batch exactly one outcome per claimed photo.")
    for o in outcomes:
        if o.final and o.result is None and o.error is None:
            raise ValidationFailed(f"Photo {o.photo.id}: a final outcome needs a result or an error.")
        if not o.final and o.retry_at is None:
            raise ValidationFailed(f"Photo {o.photo.id}: a retry needs retry_at.",
                                   hint="Use RetryPolicy.next_attempt_at(now, attempts).")


@dataclass(frozen=True)
class _PhotoUpdate:
    id: int
    attempts: int
    status: str
    last_error: str | None
    next_attempt_at: datetime | None
    completed_at: datetime | None


def _fence_sqlite(session: Session, worker_id: str, updates: list[_PhotoUpdate], now: datetime) -> set[int]:
    # SQLite has no arrays: per-photo values become CASE WHEN id IN (...) THEN value, one WHEN per distinct
    # value (a batch has a handful of statuses). The writer holds the lock, so no round trip is saved anyway.
    p = PHOTOS.c

    def per_photo(attr: str, default: Any, type_: Any = None) -> Any:
        groups: dict[Any, list[int]] = {}
        for u in updates:
            groups.setdefault(getattr(u, attr), []).append(u.id)
        whens = [(p.id.in_(ids), literal(v, type_) if type_ is not None and v is not None else v)
                 for v, ids in groups.items()]
        return whens[0][1] if len(whens) == 1 else case(*whens, else_=default)

    return set(session.scalars(
        update(PHOTOS)
        .where(p.id.in_([u.id for u in updates]), p.lease_owner == worker_id, p.status == "processing",
               tuple_(p.id, p.attempts).in_([(u.id, u.attempts) for u in updates]))
        .values(status=per_photo("status", p.status), last_error=per_photo("last_error", None),
                next_attempt_at=per_photo("next_attempt_at", None, UTCDateTime()),
                completed_at=func.coalesce(per_photo("completed_at", None, UTCDateTime()), p.completed_at),
                lease_owner=None, lease_expires_at=None, updated_at=now)
        .returning(p.id)
    ))


# The per-photo values travel as one JSON document (see _insert_results for why).
_PG_FENCE = text("""
UPDATE photos AS p
SET status = u.status, last_error = u.last_error, next_attempt_at = u.next_attempt_at,
    completed_at = coalesce(u.completed_at, p.completed_at), lease_owner = NULL, lease_expires_at = NULL,
    updated_at = :now
FROM json_to_recordset(CAST(:rows AS json))
     AS u(id bigint, attempts integer, status text, last_error text, next_attempt_at timestamptz,
          completed_at timestamptz)
WHERE p.id = u.id AND p.attempts = u.attempts AND p.lease_owner = :worker AND p.status = 'processing'
RETURNING p.id
""")


def _fence(session: Session, worker_id: str, updates: list[_PhotoUpdate], now: datetime) -> set[int]:
    """Apply each photo's new state where this worker still holds it (owner and attempt); the ids it held."""
    if session.get_bind().dialect.name != "postgresql":
        return _fence_sqlite(session, worker_id, updates, now)
    return set(session.scalars(_PG_FENCE, {"now": now, "worker": worker_id,
                                           "rows": as_json([u.__dict__ for u in updates])}))


def record_batch(*, worker_id: str, outcomes: Sequence[Outcome], now: datetime | None = None) -> RecordReport:
    """Record a batch of outcomes in one lease-fenced transaction: photos, results, tags, rollups.

    A row the database refuses fails its own photo only (`RecordReport.unrecordable`); any other database
    error fails the whole batch, whose photos stay leased to the worker.
    """
    if not outcomes:
        return RecordReport(recorded=0, lost_lease=0, retried=0, failed=0, cost_micros=0)
    _check(outcomes)
    at = now or utcnow()
    return again_row_by_row(lambda one_by_one: _record(worker_id, outcomes, at, one_by_one),
                            f"worker {worker_id}: recording {len(outcomes)} outcomes")


def _record(worker_id: str, outcomes: Sequence[Outcome], now: datetime, one_by_one: bool) -> RecordReport:
    with write_session() as s:
        rules = _rules(s, {o.photo.organization_id for o in outcomes})
        updates: list[_PhotoUpdate] = []
        rows: dict[int, dict[str, Any]] = {}
        verdicts: dict[int, list[str]] = {}
        for o in outcomes:
            pid = o.photo.id
            err: str | None
            if not o.final:
                err = error_text(o.error.kind, o.error.message) if o.error else "retry requested"
                updates.append(_PhotoUpdate(pid, o.photo.attempts, "pending", err, o.retry_at, None))
                continue
            if o.result is None:
                error = cast(ProviderError, o.error)
                status, err = "failed", error_text(error.kind, error.message)
            else:
                rule = rules[o.photo.organization_id]
                verdicts[pid] = [rule.verdict(t.label, t.confidence) for t in o.result.tags]
                status, err = rule.photo_status(verdicts[pid]), None
            updates.append(_PhotoUpdate(pid, o.photo.attempts, status, err, None, now))
            rows[pid] = _result_row(o, status, now, worker_id)

        # Id order: concurrent writers to overlapping photos (a stale duplicate) lock them in the same order.
        updates.sort(key=lambda u: u.id)
        held = _fence(s, worker_id, updates, now)
        written = write_results(s, [row for pid, row in rows.items() if pid in held],
                                {pid: v for pid, v in verdicts.items() if v and pid in held},
                                now=now, one_by_one=one_by_one)
    failed = {r["photo_id"] for r in written.rows if r["status"] == "failed"} | set(written.unrecordable)
    return RecordReport(recorded=len(written.rows), lost_lease=len(outcomes) - len(held),
                        retried=sum(1 for u in updates if u.status == "pending" and u.id in held),
                        failed=len(failed), cost_micros=sum(r["api_cost_micros"] for r in written.rows),
                        unrecordable=len(written.unrecordable))
