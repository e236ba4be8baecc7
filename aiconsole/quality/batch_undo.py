"""Undoing a batch correction: every change it recorded is put back exactly, unless someone changed the row
since, in which case the row is kept as it is now and reported.

An item is restored when its row still holds exactly what the batch left (`after`): a decided tag's label,
state, reviewer and moment; an added tag's every column. A removed tag comes back with its
id and every column, and the rows that pointed at it (review decisions, corrections, other batches' items)
point at it again. A photo item puts back the photo's status and its ground-truth rows exactly, when both are
still what the batch left. Otherwise (changed since, gone, or refused by the database) the item is kept and
reported with what the batch left and what is there now. Items are undone newest first in chunks, with the
batch's locks; an undo that stopped can be run again and carries on with the items not yet undone. Audited
with a plain-language summary. Permission: quality.batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from aiconsole.pipeline.result_rows import ROW_ERRORS, short_reason
from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.settings import Settings
from aiconsole.quality import batch_rows as rows
from aiconsole.quality.batch_rows import CHUNK_SIZE, DECIDED, ITEMS, TAGS, WHOLE
from aiconsole.quality.batches import BATCHES, STATE_AFTER, BatchProgress, BatchRow, ProgressFn, batch_row, get_batch
from aiconsole.quality.review_queue import write_session

MAX_REPORTED = 200
CHANGED_SINCE = "changed since the batch"
GONE = "no longer there"


@dataclass(frozen=True)
class KeptRow:
    """An item the undo kept as it is now: what the batch left, what is there now (None: gone), and why."""

    item_id: int
    tag_id: int | None
    photo_id: int
    action: str
    left: dict[str, Any] | None
    now: dict[str, Any] | None
    reason: str


@dataclass(frozen=True)
class UndoOutcome:
    """What undoing a batch did: rows restored, rows kept (up to MAX_REPORTED of them listed)."""

    batch: BatchRow
    restored: int
    kept: int
    kept_rows: tuple[KeptRow, ...]

    @property
    def message(self) -> str:
        """What the undo did, in words (the audit entry's summary, and the panel's)."""
        return undo_summary(self.batch)


def undo_summary(batch: BatchRow) -> str:
    """'Undid batch #4 (rename 'cat' to 'kitten'): 12 changes restored, 1 kept as they are (changed or removed
    since)' from the batch's counters."""
    text = f"Undid batch #{batch.id} ({batch.description}): {fmt.plural(batch.restored, 'change')} restored"
    if batch.kept:
        text += f", {fmt.count(batch.kept)} kept as they are (changed or removed since)"
    return text


@dataclass
class _Item:
    row: Any
    restore: bool = False
    reason: str = ""
    now: dict[str, Any] | None = None


def undo_batch(actor: Actor, *, batch_id: int, chunk_size: int = CHUNK_SIZE, progress: ProgressFn | None = None,
               now: datetime | None = None, settings: Settings | None = None) -> UndoOutcome:
    """Undo batch `batch_id` (see the module); ConflictError while it runs or once it is undone."""
    actor.require("quality.batch")
    org = actor.organization_id
    total, status_before = _begin(actor, batch_id, settings)
    last: int | None = None
    seen, restored, kept = 0, 0, 0
    reported: list[KeptRow] = []
    while True:
        n, last, ok, held = rows.in_transaction(
            org, settings, partial(_chunk, org=org, batch_id=batch_id, last=last, size=chunk_size, now=now or utcnow()))
        if n == 0:
            break
        seen, restored, kept = seen + n, restored + ok, kept + len(held)
        reported.extend(held[:MAX_REPORTED - len(reported)])
        if progress is not None:
            progress(BatchProgress(batch_id, total, seen, restored, 0, kept))
    done = _finish(actor, batch_id, settings, status_before=status_before, now=now or utcnow())
    return UndoOutcome(batch=done, restored=restored, kept=kept, kept_rows=tuple(reported))


def _begin(actor: Actor, batch_id: int, settings: Settings | None) -> tuple[int, str]:
    """Mark the batch as being undone: how many of its items are left to undo, and its status before."""
    batch = get_batch(actor, batch_id=batch_id, settings=settings)
    with write_session(actor.organization_id, settings) as s:
        status = s.scalar(select(BATCHES.c.status).where(BATCHES.c.id == batch_id).with_for_update())
        if status == "running":
            raise ConflictError(f"Batch #{batch_id} is still running.", hint="Undo it once it has finished.")
        if status == "undone":
            raise ConflictError(f"Batch #{batch_id} was undone already ({fmt.plural(batch.restored, 'change')} "
                                "restored).", hint="Run a new batch to change those tags again.")
        s.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(status="undoing"))
        left = s.scalar(select(func.count()).where(ITEMS.c.batch_id == batch_id, ITEMS.c.error.is_(None),
                                                   ITEMS.c.undo_result.is_(None)))
        return int(left or 0), str(status)


def _tag_id(item: Any) -> int | None:
    return (item.before or {}).get("id") if item.action == "remove" else item.tag_id


def _chunk(s: Session, *, org: int, batch_id: int, last: int | None, size: int,
           now: datetime) -> tuple[int, int, int, list[KeptRow]]:
    """Undo the next items before id `last` (newest first: a photo's later item puts back what its earlier one
    left): (items gone through, the last id, restored, kept rows)."""
    i = ITEMS.c
    query = (select(ITEMS).where(i.batch_id == batch_id, i.error.is_(None), i.undo_result.is_(None),
                                 *(() if last is None else (i.id < last,))).order_by(i.id.desc()).limit(size))
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # a second undo of this batch takes other items
    found = s.execute(query).all()
    if not found:
        return 0, last or 0, 0, []
    rows.lock_photos(s, [r.photo_id for r in found])
    tag_ids = [t for t in map(_tag_id, found) if t is not None]
    tags = {r.id: r for r in rows.locked_tags(s, tag_ids)}
    photos = rows.photo_states(s, sorted({r.photo_id for r in found}))
    items = [_judge(r, tags, photos) for r in found]
    _restore_all(s, [x for x in items if x.restore], now)
    for result in ("restored", "kept"):
        ids = [x.row.id for x in items if x.restore == (result == "restored")]
        if ids:
            s.execute(update(ITEMS).where(rows.among(s, i.id, ids)).values(undo_result=result))
    ok = sum(1 for x in items if x.restore)
    rows.add_counts(s, batch_id, restored=ok, kept=len(items) - ok)
    held = [KeptRow(item_id=x.row.id, tag_id=_tag_id(x.row), photo_id=x.row.photo_id, action=x.row.action,
                    left=x.row.after, now=x.now, reason=x.reason) for x in items if not x.restore]
    return len(found), found[-1].id, ok, held


def _judge(item: Any, tags: dict[int, Any], photos: dict[int, dict[str, Any]]) -> _Item:
    """Whether the item's row still holds what the batch left (then it is restored)."""
    out = _Item(row=item)
    if item.action == "remove":
        tag = tags.get(_tag_id(item) or 0)
        out.now = None if tag is None else rows.values(tag, WHOLE)
        out.restore = tag is None and item.photo_id in photos
        if not out.restore:
            out.reason = "a tag with its id exists again" if tag is not None else "its photo was deleted since"
        return out
    if item.action == "photo":
        out.now = photos.get(item.photo_id)
        if out.now is not None and out.now == item.after:
            photos[item.photo_id] = item.before  # an older item of this photo in the chunk finds this state
    else:
        tag = tags.get(item.tag_id or 0)
        out.now = None if tag is None else rows.values(tag, WHOLE if item.action == "add" else DECIDED)
    out.restore = out.now is not None and out.now == item.after
    if not out.restore:
        out.reason = GONE if out.now is None else CHANGED_SINCE
    return out


def _restore(s: Session, items: Sequence[_Item], now: datetime) -> None:
    """Put the items' before back in bulk; raises what the database refuses."""
    rows.set_decided(s, [(x.row.tag_id, x.row.before) for x in items if x.row.action in STATE_AFTER])
    added = [x.row.tag_id for x in items if x.row.action == "add"]
    if added:
        s.execute(delete(TAGS).where(rows.among(s, TAGS.c.id, added)))
    removed = [x.row for x in items if x.row.action == "remove"]
    if removed:
        s.execute(insert(TAGS), [rows.column_values({c: r.before[c] for c in WHOLE}) for r in removed])
        for r in removed:
            rows.relink(s, r.before["id"], r.before.get("links") or {})
            s.execute(update(ITEMS).where(ITEMS.c.id == r.id).values(tag_id=r.before["id"]))
    # Newest first: a photo's oldest item in the chunk comes last and leaves the state before the batch.
    photos = {x.row.photo_id: x.row.before for x in items if x.row.action == "photo"}
    if photos:
        rows.put_photos(s, list(photos.items()), now)


def _restore_all(s: Session, items: Sequence[_Item], now: datetime) -> None:
    """Restore in bulk; when the database refuses that, item by item (a refused one is kept, with why)."""
    if not items:
        return
    try:
        with s.begin_nested():
            _restore(s, items, now)
        return
    except ROW_ERRORS:
        pass
    for i in items:
        try:
            with s.begin_nested():
                _restore(s, [i], now)
        except ROW_ERRORS as exc:
            i.restore, i.reason = False, f"could not be restored: {short_reason(exc)}"


def _finish(actor: Actor, batch_id: int, settings: Settings | None, *, status_before: str,
            now: datetime) -> BatchRow:
    with write_session(actor.organization_id, settings) as s:
        s.execute(update(BATCHES).where(BATCHES.c.id == batch_id)
                  .values(status="undone", undone_by=actor.user_id, undone_at=now))
        row = batch_row(s, batch_id)
        audit.record(s, actor=actor, action="quality.batch.undo", entity_type="correction_batch",
                     entity_id=batch_id, before={"status": status_before, "changed": row.changed},
                     after={"status": "undone", "restored": row.restored, "kept": row.kept}, summary=undo_summary(row))
        return row
