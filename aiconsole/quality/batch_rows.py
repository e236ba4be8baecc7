"""The row work a batch correction and its undo share: a chunk's short transaction (photos locked first, in id
order, then their tags), a tag's values as an item stores them, the items written, and what every chunk ends
with: photos that no longer wait for review leave needs_review, and the touched photos' ground truth is
rewritten by its one owner (`decisions.rewrite_ground_truth`). A photo whose status or ground truth that
changed gets a photo item holding both, before and after, rows exactly (an imported label the rule does not
derive from tags included), so an undo can put them back.

Lock order: a chunk locks its photos (FOR NO KEY UPDATE, sorted by id) before any of their tags, the order a
review submit takes them in (photo, claim, tags), so the two never wait on each other in a cycle; foreign-key
checks of a worker inserting tags (KEY SHARE) never wait on it. A chunk PostgreSQL still picks as a deadlock
victim (or one that waited past the lock timeout) runs again, a few times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import BigInteger, ColumnElement, Table, any_, bindparam, delete, exists, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from aiconsole.pipeline.result_rows import as_json
from aiconsole.pipeline.rules import RuleSet
from aiconsole.platform.db.models import CorrectionBatch, CorrectionBatchItem, GroundTruth, Photo, PhotoTag
from aiconsole.platform.settings import Settings
from aiconsole.quality.decisions import rewrite_ground_truth
from aiconsole.quality.queue_sql import QueueFilters, tag_match
from aiconsole.quality.review_queue import write_session

TAGS = cast(Table, PhotoTag.__table__)
PHOTOS = cast(Table, Photo.__table__)
BATCHES = cast(Table, CorrectionBatch.__table__)
ITEMS = cast(Table, CorrectionBatchItem.__table__)
TRUTH = cast(Table, GroundTruth.__table__)

# What a tag decision changes (and so what an item's before/after hold for rename, accept and reject).
DECIDED = ("label", "review_state", "reviewed_by", "reviewed_at")
# Every column of a tag: what a removed tag's item keeps, and an added tag's.
WHOLE = tuple(c.name for c in TAGS.columns)
# A ground-truth row as a photo item keeps it (its id is not kept: an undo writes the rows anew).
TRUTH_COLUMNS = tuple(c.name for c in TRUTH.columns if c.name != "id")
# Rows that point at a tag and lose it (SET NULL) when a batch removes it: put back when the tag is.
LINKS = ("review_decisions", "corrections", "correction_batch_items")
CHUNK_SIZE = 2000
LOCK_TIMEOUT_MS = 5000
_RETRIED = ("40P01", "55P03")  # deadlock victim, lock not available in time
_ATTEMPTS = 4
T = TypeVar("T")


@dataclass
class Change:
    """One change a chunk makes (or tried to: `error`), as its item records it."""

    tag_id: int | None
    photo_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    error: str | None = None


def stored(value: Any) -> Any:
    """A column value as an item's JSON holds it (moments as ISO text in UTC, which compares exactly)."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def values(row: Any, columns: Sequence[str]) -> dict[str, Any]:
    """The row's `columns` as an item's JSON holds them."""
    m = row._mapping
    return {c: stored(m[c]) for c in columns}


def column_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """An item's JSON values back as column values (ISO text back to moments)."""
    out = dict(data)
    for key in ("reviewed_at", "created_at"):
        if isinstance(out.get(key), str):
            out[key] = datetime.fromisoformat(out[key])
    return out


def in_transaction(org: int, settings: Settings | None, work: Callable[[Session], T]) -> T:
    """Run `work` in one chunk transaction (SQLite's write lock from the start; a bounded lock wait on
    PostgreSQL), again when PostgreSQL chose it as a deadlock victim or its lock wait ran out."""
    for attempt in range(_ATTEMPTS):
        try:
            with _chunk_session(org, settings) as s:
                return work(s)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRIED or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@contextmanager
def _chunk_session(org: int, settings: Settings | None) -> Iterator[Session]:
    with write_session(org, settings) as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
        yield s


def among(s: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN ids`; to PostgreSQL as `= ANY(one array parameter)`: a chunk's 2,000 ids are then one bound
    value, not 2,000 placeholders for SQLAlchemy to render and psycopg to parse (a fifth of a chunk's time)."""
    values = [int(i) for i in ids]
    if s.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, values, type_=ARRAY(BigInteger))))
    return cast(ColumnElement[bool], column.in_(values))


def lock_photos(s: Session, photo_ids: Sequence[int]) -> None:
    """Lock the photos (in id order, see the module) for the rest of the chunk; SQLite's write lock is enough."""
    if photo_ids and s.get_bind().dialect.name == "postgresql":
        s.execute(select(PHOTOS.c.id).where(among(s, PHOTOS.c.id, sorted(set(photo_ids)))).order_by(PHOTOS.c.id)
                  .with_for_update(key_share=True)).all()


def locked_tags(s: Session, tag_ids: Sequence[int], *conds: Any) -> list[Any]:
    """The tags `tag_ids` still matching `conds`, every column, locked on PostgreSQL, by id."""
    query = select(TAGS).where(among(s, TAGS.c.id, tag_ids), *conds).order_by(TAGS.c.id)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=TAGS)
    return list(s.execute(query).all())


def links(s: Session, tag_ids: Sequence[int]) -> dict[int, dict[str, list[int]]]:
    """Per tag, the ids of rows in LINKS that point at it."""
    found: dict[int, dict[str, list[int]]] = {t: {} for t in tag_ids}
    for name in LINKS:
        table = cast(Table, TAGS.metadata.tables[name])
        for row_id, tag_id in s.execute(select(table.c.id, table.c.tag_id).where(table.c.tag_id.in_(list(tag_ids)))
                                        .order_by(table.c.id)):
            found[tag_id].setdefault(name, []).append(row_id)
    return found


def relink(s: Session, tag_id: int, linked: Mapping[str, Sequence[int]]) -> None:
    """Point the rows a removed tag lost back at it (those still pointing at nothing)."""
    for name, ids in linked.items():
        table = cast(Table, TAGS.metadata.tables[name])
        s.execute(update(table).where(table.c.id.in_(list(ids)), table.c.tag_id.is_(None)).values(tag_id=tag_id))


# PostgreSQL takes a chunk's items as one JSON document: a third of the time of a multi-row VALUES insert.
_PG_ITEMS = text(f"""
INSERT INTO {ITEMS.name} (organization_id, batch_id, tag_id, photo_id, action, before, after, error, created_at)
SELECT :org, :batch, j.tag_id, j.photo_id, j.action, j.before, j.after, j.error, :now
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS j(tag_id bigint, photo_id bigint, action text, before jsonb,
                                                    after jsonb, error text)
""").bindparams(bindparam("now", type_=ITEMS.c.created_at.type))


def write_items(s: Session, *, org: int, batch_id: int, changes: Sequence[Change], now: datetime) -> None:
    """Record the changes (and refusals) as the batch's items."""
    if not changes:
        return
    rows = [{"tag_id": c.tag_id, "photo_id": c.photo_id, "action": c.action, "before": c.before, "after": c.after,
             "error": c.error} for c in changes]
    if s.get_bind().dialect.name == "postgresql":
        s.execute(_PG_ITEMS, {"org": org, "batch": batch_id, "now": now, "rows": as_json(rows)})
    else:
        s.execute(insert(ITEMS), [{**r, "organization_id": org, "batch_id": batch_id, "created_at": now}
                                  for r in rows])


def waiting_tag(org: int, rules: RuleSet) -> Any:
    """A tag (correlated to PHOTOS) that keeps its photo in the review queue: the queue's own rule."""
    return exists(select(TAGS.c.id).where(*tag_match(org, rules, "lowest_confidence", QueueFilters())))


def truth_rows(s: Session, photo_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each photo's ground-truth rows (every column but its id, by label) as an item's JSON holds them."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in photo_ids}
    for r in s.execute(select(TRUTH).where(among(s, TRUTH.c.photo_id, photo_ids))
                       .order_by(TRUTH.c.photo_id, TRUTH.c.label)):
        out[r.photo_id].append(values(r, TRUTH_COLUMNS))
    return out


def photo_states(s: Session, photo_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What a photo item holds of each photo that exists: its status and its ground-truth rows."""
    truth = truth_rows(s, photo_ids)
    found = s.execute(select(PHOTOS.c.id, PHOTOS.c.status).where(among(s, PHOTOS.c.id, photo_ids))).all()
    return {r.id: {"status": r.status, "ground_truth": truth[r.id]} for r in found}


def set_decided(s: Session, tags: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
    """Give each tag its DECIDED values (as an item holds them): one UPDATE per distinct set of values."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for tag_id, decided in tags:
        groups.setdefault(tuple(decided[c] for c in DECIDED), []).append(tag_id)
    for outcome, ids in groups.items():
        s.execute(update(TAGS).where(among(s, TAGS.c.id, ids)).values(column_values(dict(zip(DECIDED, outcome,
                                                                                         strict=True)))))


def put_photos(s: Session, states: Sequence[tuple[int, Mapping[str, Any]]], now: datetime) -> None:
    """Give each photo its status and exactly its ground-truth rows (an undo putting photo items back)."""
    by_status: dict[str, list[int]] = {}
    for photo_id, state in states:
        by_status.setdefault(state["status"], []).append(photo_id)
    for status, ids in by_status.items():
        s.execute(update(PHOTOS).where(among(s, PHOTOS.c.id, ids)).values(status=status, updated_at=now))
    s.execute(delete(TRUTH).where(among(s, TRUTH.c.photo_id, [photo_id for photo_id, _ in states])))
    truth = [column_values(r) for _, state in states for r in state["ground_truth"]]
    if truth:
        s.execute(insert(TRUTH), truth)


def finish_chunk(s: Session, *, org: int, rules: RuleSet, photo_ids: Sequence[int], set_by: int | None,
                 now: datetime) -> list[Change]:
    """Move the touched photos in needs_review that no longer wait for review to completed and rewrite their
    ground truth; returns a photo change for each whose status or ground truth that changed (its items)."""
    ids = sorted(set(photo_ids))
    if not ids:
        return []
    p = PHOTOS.c
    before = photo_states(s, ids)
    done = list(s.scalars(select(p.id).where(among(s, p.id, ids), p.status == "needs_review",
                                             ~waiting_tag(org, rules))))
    if done:
        s.execute(update(PHOTOS).where(among(s, p.id, done)).values(status="completed", updated_at=now))
    rewrite_ground_truth(s, org=org, photo_ids=ids, source="batch", review_id=None, set_by=set_by, now=now)
    after = photo_states(s, ids)
    return [Change(tag_id=None, photo_id=i, action="photo", before=before[i], after=after[i])
            for i in ids if i in before and before[i] != after.get(i)]


def add_counts(s: Session, batch_id: int, **deltas: int) -> None:
    """Add to the batch's counters in the chunk's transaction, so they always agree with its items."""
    changed = {name: BATCHES.c[name] + n for name, n in deltas.items() if n}
    if changed:
        s.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(changed))
