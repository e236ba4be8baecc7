"""Recording a batch of outcomes: one transaction, fenced by the lease, bulk statements only.

In order: one UPDATE moves every photo this worker still holds (same lease owner, same attempt) to its new
status and returns their ids; outcomes of photos it no longer holds are dropped, so a worker that lost its
lease writes nothing. Then the result rows and their photo_tags (each tag's verdict from the org's rules):
one statement on PostgreSQL, two bulk inserts on SQLite. Last the hourly rollup upsert
(`ON CONFLICT ... DO UPDATE SET col = col + excluded.col`), so the one hot rollup row per org, hour and
provider stays locked only until the commit right after it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import Table, case, func, insert, literal, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from aiconsole.pipeline.queue import PHOTOS, ClaimedPhoto, error_text, write_session
from aiconsole.pipeline.rules import RuleSet
from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    PhotoTag,
    PipelineConfig,
    ProcessingRollupHourly,
)
from aiconsole.platform.db.sql import floor_hour
from aiconsole.platform.db.types import UTCDateTime, utcnow
from aiconsole.platform.errors import ProviderError, ValidationFailed

if TYPE_CHECKING:
    from aiconsole.providers.base import ProviderResult

RESULTS = cast(Table, AiProcessingResult.__table__)
TAGS = cast(Table, PhotoTag.__table__)
ROLLUPS = cast(Table, ProcessingRollupHourly.__table__)
ROLLUP_KEY = ("organization_id", "hour", "ai_provider")
_SUMS = ("results_count", "completed_count", "needs_review_count", "failed_count", "retry_count_sum", "tag_count",
         "cost_micros", "input_tokens", "output_tokens", "units", "confidence_sum", "confidence_count",
         "latency_ms_sum", "queue_wait_ms_sum",
         *(f"latency_b{i}" for i in range(len(LATENCY_BUCKETS_MS) + 1)),
         *(f"wait_b{i}" for i in range(len(WAIT_BUCKETS_MS) + 1)))


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
    cost_micros: the cost of the recorded results."""

    recorded: int
    lost_lease: int
    retried: int
    failed: int
    cost_micros: int


def _bucket(value: int, bounds: Sequence[int]) -> int:
    # Bucket i holds bounds[i-1] < value <= bounds[i]; len(bounds) is the open top bucket.
    return bisect_left(bounds, value)


class _Rollups:
    """Per (org, hour, provider) sums of a batch, the same figures rollups.rollup_select computes in SQL."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, datetime, str], dict[str, Any]] = {}

    def add(self, r: dict[str, Any], hour: datetime) -> None:
        key = (r["organization_id"], hour, r["ai_provider"])
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = dict.fromkeys(_SUMS, 0)
            row["confidence_sum"] = 0.0
        row["results_count"] += 1
        row[f"{r['status']}_count"] += 1
        row["retry_count_sum"] += r["retry_count"]
        row["tag_count"] += r["tag_count"]
        row["cost_micros"] += r["api_cost_micros"]
        row["input_tokens"] += r["input_tokens"]
        row["output_tokens"] += r["output_tokens"]
        row["units"] += r["units"]
        if r["avg_confidence"] is not None:
            row["confidence_sum"] += r["avg_confidence"]
            row["confidence_count"] += 1
        latency, wait = r["provider_response_time_ms"], r["queue_wait_time_ms"]
        row["latency_ms_sum"] += latency
        row["queue_wait_ms_sum"] += wait
        row[f"latency_b{_bucket(latency, LATENCY_BUCKETS_MS)}"] += 1
        row[f"wait_b{_bucket(wait, WAIT_BUCKETS_MS)}"] += 1

    def upsert(self, session: Session) -> None:
        if not self.rows:
            return
        # Sorted keys: two workers upserting the same rows lock them in the same order, never a deadlock.
        values = [{"organization_id": k[0], "hour": k[1], "ai_provider": k[2], **self.rows[k]}
                  for k in sorted(self.rows)]
        session.execute(_rollup_upsert(session.get_bind().dialect.name), values)


@lru_cache(maxsize=4)
def _rollup_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (org, hour, provider) DO UPDATE SET col = col + excluded.col, built once per dialect."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(ROLLUPS)
    return stmt.on_conflict_do_update(index_elements=[ROLLUPS.c[k] for k in ROLLUP_KEY],
                                      set_={k: ROLLUPS.c[k] + stmt.excluded[k] for k in _SUMS})


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


def _as_json(rows: list[dict[str, Any]]) -> str:
    # orjson: the recorder's JSON documents are a tenth of a worker's CPU with the standard library.
    # Datetimes come out as RFC 3339; NaN cannot occur (Tag refuses it).
    return orjson.dumps(rows).decode()


def _fence(session: Session, worker_id: str, updates: list[_PhotoUpdate], now: datetime) -> set[int]:
    """Apply each photo's new state where this worker still holds it (owner and attempt); the ids it held."""
    if session.get_bind().dialect.name != "postgresql":
        return _fence_sqlite(session, worker_id, updates, now)
    return set(session.scalars(_PG_FENCE, {"now": now, "worker": worker_id,
                                           "rows": _as_json([u.__dict__ for u in updates])}))


@lru_cache(maxsize=8)
def _pg_insert_results(names: tuple[str, ...], with_tags: bool) -> Any:
    """Result rows from one JSON document; with_tags: their photo_tags too, in the same statement.

    Each JSON row carries the result's columns plus `verdicts`, the review state of each of its tags in
    order; the tags themselves are the result's own `tags` array, so they travel (and are parsed) once.
    """
    dialect = postgresql.dialect()
    types = ", ".join(f"{n} {RESULTS.c[n].type.compile(dialect=dialect)}" for n in names)
    cols = ", ".join(names)
    rows = f"SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS j({types}, verdicts json)"
    if not with_tags:
        return text(f"INSERT INTO {RESULTS.name} ({cols}) SELECT {cols} FROM ({rows}) AS u")
    return text(f"""
WITH u AS MATERIALIZED ({rows}),
r AS (INSERT INTO {RESULTS.name} ({cols}) SELECT {cols} FROM u RETURNING id, photo_id)
INSERT INTO {TAGS.name} (organization_id, photo_id, result_id, label, confidence, source, review_state, created_at)
SELECT u.organization_id, u.photo_id, r.id, e.tag ->> 'label', CAST(e.tag ->> 'confidence' AS double precision),
       'ai', u.verdicts ->> CAST(e.i - 1 AS integer), u.created_at
FROM u JOIN r ON r.photo_id = u.photo_id
CROSS JOIN LATERAL jsonb_array_elements(u.tags) WITH ORDINALITY AS e(tag, i)
ORDER BY u.photo_id, e.i
""")


def _insert_results(session: Session, results: list[dict[str, Any]], verdicts: dict[int, list[str]]) -> None:
    """Insert result rows and, for each, one photo_tags row per tag with its verdict."""
    if not results:
        return
    names = tuple(results[0])
    if session.get_bind().dialect.name == "postgresql":
        # One statement, one JSON parameter: psycopg would dump Python lists into arrays element by element
        # in Python, while orjson runs in C; the SQL text is the same for every batch size.
        doc = _as_json([{**r, "verdicts": verdicts.get(r["photo_id"], [])} for r in results])
        session.execute(_pg_insert_results(names, bool(verdicts)), {"rows": doc})
        return
    returned = session.execute(insert(RESULTS).returning(RESULTS.c.id, RESULTS.c.photo_id), results)
    ids = {int(photo_id): int(rid) for rid, photo_id in returned}
    tags = [{"organization_id": r["organization_id"], "photo_id": r["photo_id"], "result_id": ids[r["photo_id"]],
             "label": t["label"], "confidence": t["confidence"], "source": "ai", "review_state": v,
             "created_at": r["created_at"]}
            for r in results for t, v in zip(r["tags"], verdicts.get(r["photo_id"], []), strict=True)]
    if tags:
        session.execute(insert(TAGS), tags)


def write_results(session: Session, results: list[dict[str, Any]], verdicts: dict[int, list[str]], *,
                  now: datetime) -> None:
    """Result rows, their tags (with each tag's verdict) and the hourly rollups of `now`, in the caller's session."""
    _insert_results(session, results, verdicts)
    rollups = _Rollups()
    hour = floor_hour(now)
    for r in results:
        rollups.add(r, hour)
    rollups.upsert(session)


def record_batch(*, worker_id: str, outcomes: Sequence[Outcome], now: datetime | None = None) -> RecordReport:
    """Record a batch of outcomes in one lease-fenced transaction: photos, results, tags, rollups."""
    if not outcomes:
        return RecordReport(recorded=0, lost_lease=0, retried=0, failed=0, cost_micros=0)
    _check(outcomes)
    now = now or utcnow()
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
        results = [row for pid, row in rows.items() if pid in held]
        write_results(s, results, {pid: v for pid, v in verdicts.items() if v and pid in held}, now=now)
    return RecordReport(recorded=len(results), lost_lease=len(outcomes) - len(held),
                        retried=sum(1 for u in updates if u.status == "pending" and u.id in held),
                        failed=sum(1 for r in results if r["status"] == "failed"),
                        cost_micros=sum(r["api_cost_micros"] for r in results))
