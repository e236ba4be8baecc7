"""The one writer of result rows, their photo_tags and the hourly rollups (for the recorder and the reaper),
and how one row the database refuses is kept from sinking the rows beside it.

Normally everything goes in bulk: on PostgreSQL one statement for results and tags from one JSON document,
on SQLite two bulk inserts; then one rollup upsert (`ON CONFLICT ... DO UPDATE SET col = col + excluded.col`).

A row's own values can make the database refuse the bulk statement (a DataError: a number out of range, a
string too long for its column; an IntegrityError: a CHECK, a foreign key to an experiment deleted
meanwhile). On PostgreSQL that aborts the transaction, so the caller runs its transaction again with
`one_by_one=True` (`again_row_by_row`): each row then goes in its own SAVEPOINT, and a refused row's photo
fails alone, with "could not be recorded: <reason>" in last_error and, where the database takes it, a
failed result row standing in for it. Anything else (an OperationalError: the connection, a timeout, a
shutdown) is not the row's fault and still fails the whole transaction, which the worker holds for retry.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import String, Table, func, insert, literal, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from aiconsole.pipeline.queue import MAX_ERROR_CHARS, PHOTOS
from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    PhotoTag,
    ProcessingRollupHourly,
)
from aiconsole.platform.db.sql import floor_hour

log = logging.getLogger(__name__)

RESULTS = cast(Table, AiProcessingResult.__table__)
TAGS = cast(Table, PhotoTag.__table__)
ROLLUPS = cast(Table, ProcessingRollupHourly.__table__)
ROLLUP_KEY = ("organization_id", "hour", "ai_provider")
_SUMS = ("results_count", "completed_count", "needs_review_count", "failed_count", "retry_count_sum", "tag_count",
         "cost_micros", "input_tokens", "output_tokens", "units", "confidence_sum", "confidence_count",
         "latency_ms_sum", "queue_wait_ms_sum",
         *(f"latency_b{i}" for i in range(len(LATENCY_BUCKETS_MS) + 1)),
         *(f"wait_b{i}" for i in range(len(WAIT_BUCKETS_MS) + 1)))

# What a row's own values can make the database refuse. Not OperationalError: that is the infrastructure's.
ROW_ERRORS = (DataError, IntegrityError)
UNRECORDABLE = "could not be recorded: "
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_REASON_CHARS = 300

T = TypeVar("T")


@dataclass(frozen=True)
class Written:
    """What write_results wrote: the result rows (stand-ins included), and the photos it failed because their
    row could not be recorded, each with its last_error reason."""

    rows: list[dict[str, Any]]
    unrecordable: dict[int, str]


def _bucket(value: int, bounds: Sequence[int]) -> int:
    # Bucket i holds bounds[i-1] < value <= bounds[i]; len(bounds) is the open top bucket.
    return bisect_left(bounds, value)


class _Rollups:
    """Per (org, hour, provider) sums of a batch, the same figures rollups.rollup_select computes in SQL."""

    def __init__(self, results: list[dict[str, Any]], hour: datetime) -> None:
        self.rows: dict[tuple[int, datetime, str], dict[str, Any]] = {}
        for r in results:
            self.add(r, hour)

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

    def fit(self) -> bool:
        """Whether every sum fits a 64-bit column (a bound parameter that does not is no database error)."""
        return all(_out_of_range(row) is None for row in self.rows.values())

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


def as_json(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON document for a json_to_recordset parameter."""
    # orjson: the recorder's JSON documents are a tenth of a worker's CPU with the standard library.
    # Datetimes come out as RFC 3339; NaN cannot occur (Tag refuses it).
    return orjson.dumps(rows).decode()


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
        doc = as_json([{**r, "verdicts": verdicts.get(r["photo_id"], [])} for r in results])
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


def _out_of_range(row: dict[str, Any]) -> str | None:
    """Why a row cannot even be sent (an integer no 64-bit column holds), or None."""
    for name, value in row.items():
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            return f"{name} {value} is outside the 64-bit integer range"
    return None


def write_results(session: Session, results: list[dict[str, Any]], verdicts: dict[int, list[str]], *,
                  now: datetime, one_by_one: bool = False) -> Written:
    """Result rows, their tags (with each tag's verdict) and the hourly rollups of `now`, in the caller's session.

    In bulk unless `one_by_one` (see the module) or a row holds a number no column can: then each row in its
    own SAVEPOINT, and the photo of a row that is refused (or cannot be sent) is failed with its reason.
    """
    hour = floor_hour(now)
    refused = {r["photo_id"]: why for r in results if (why := _out_of_range(r)) is not None}
    rollups = _Rollups(results, hour)
    if not one_by_one and not refused and rollups.fit():
        _insert_results(session, results, verdicts)
        rollups.upsert(session)
        return Written(rows=results, unrecordable={})
    written: list[dict[str, Any]] = []
    unrecordable: dict[int, str] = {}
    # Rollup-key order (the hour is the same for all), as the bulk upsert locks them: no deadlock between them.
    for r in sorted(results, key=lambda r: (r["organization_id"], r["ai_provider"], r["photo_id"])):
        pid = r["photo_id"]
        if pid not in refused:
            why = _attempt(session, r, {pid: verdicts[pid]} if verdicts.get(pid) else {}, hour)
            if why is None:
                written.append(r)
                continue
            refused[pid] = why
        reason = UNRECORDABLE + refused[pid]
        log.warning("photo %s could not be recorded (%s): it fails alone, the rest of its batch is recorded",
                    pid, refused[pid])
        stand_in = _stand_in(r, reason)
        if _attempt(session, stand_in, {}, hour) is None:
            written.append(stand_in)
        _fail_photo(session, pid, reason, now)
        unrecordable[pid] = reason
    return Written(rows=written, unrecordable=unrecordable)


def _attempt(session: Session, row: dict[str, Any], verdicts: dict[int, list[str]], hour: datetime) -> str | None:
    """Write one row, its tags and its rollup in a SAVEPOINT; the database's short reason if it refused them."""
    try:
        with session.begin_nested():
            _insert_results(session, [row], verdicts)
            _Rollups([row], hour).upsert(session)
    except ROW_ERRORS as exc:
        return short_reason(exc)
    return None


def short_reason(exc: DBAPIError) -> str:
    """The database's one-line reason for refusing a statement, without the statement or its parameters."""
    diag = getattr(exc.orig, "diag", None)
    message = getattr(diag, "message_primary", None) or str(exc.orig)
    return " ".join(str(message).split())[:_REASON_CHARS]


def _stand_in(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed result row in place of a refused one: the cost paid and the timings where they fit, no tags or
    usage, no references that may dangle, strings cut to their columns, the reason as its error."""
    out = {**row, "status": "failed", "tags": [], "tag_count": 0, "avg_confidence": None, "min_confidence": None,
           "prompt_version_id": None, "experiment_id": None, "variant": None, "input_tokens": 0,
           "output_tokens": 0, "units": 0, "error_kind": "unrecordable", "error": reason,
           "trace": [{"step": "record", "outcome": "unrecordable", "reason": reason}]}
    for name, value in out.items():
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            out[name] = 0
        length = getattr(RESULTS.c[name].type, "length", None)
        if isinstance(value, str) and length is not None:
            out[name] = value[:length]
    return out


def _fail_photo(session: Session, photo_id: int, reason: str, now: datetime) -> None:
    """The photo fails with `reason`, ahead of whatever last_error it had (why it failed, if it did)."""
    p = PHOTOS.c
    previous = func.coalesce(literal("; ") + p.last_error, "")
    session.execute(update(PHOTOS).where(p.id == photo_id).values(
        status="failed", completed_at=now, updated_at=now, lease_owner=None, lease_expires_at=None,
        last_error=func.substr(literal(reason, String) + previous, 1, MAX_ERROR_CHARS)))


def again_row_by_row(work: Callable[[bool], T], what: str) -> T:
    """`work(False)`; if the database refused one row's values, the transaction went with it: `work(True)`, which
    writes each row on its own (see the module). Every other error propagates."""
    try:
        return work(False)
    except ROW_ERRORS as exc:
        log.warning("%s: the database refused a row (%s); writing the rows one by one", what, short_reason(exc))
        return work(True)
