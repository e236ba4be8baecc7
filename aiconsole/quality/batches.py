"""Batch corrections: an admin applies one template to every tag a filter selects (`batch_select`), in chunks.

`run_batch` records the batch (running, with how many rows it matched), then works through the selection by
id in chunks of `chunk_size` rows (2,000 by default), each its own short transaction (`batch_rows`): the chunk's
photos locked, its tags re-read under the lock (a row someone changed meanwhile so that it no longer matches
is passed over), changed in bulk, every change recorded as an item with its exact values before and after,
photos that no longer wait for review moved out of needs_review, the touched photos' ground truth rewritten,
the batch's counters advanced. Rows are taken up to the highest id that existed when the batch started, so
tags the workers record meanwhile are not swept in. After each chunk `progress` hears how far it got.

One bad row never sinks the batch: when the database refuses a chunk's bulk change (a data or constraint
error), the chunk is done again row by row in savepoints and the refused rows are counted failed, each item
keeping the database's reason. A batch stopped by anything else is marked failed (its error kept); one
stopped from outside (the page left) is marked cancelled; one whose process died (no chunk for a while:
`batch_heartbeat`, every chunk beats first) is marked interrupted by the next read of batches; what it changed
until then stays and can be undone (`batch_undo`). Start and finish are audited with plain-language summaries.
Permission: quality.batch (admins); reviewers correct single photos through the review queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from aiconsole.pipeline.result_rows import ROW_ERRORS, short_reason
from aiconsole.pipeline.rules import load_rules
from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import CorrectionBatch, User
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import batch_rows as rows
from aiconsole.quality import batch_select as sel
from aiconsole.quality.batch_heartbeat import BatchInterrupted, beat, expire_stale
from aiconsole.quality.batch_rows import CHUNK_SIZE, DECIDED, ITEMS, TAGS, WHOLE, Change
from aiconsole.quality.batch_select import BatchFilter, BatchPreview, describe
from aiconsole.quality.decisions import HUMAN_CONFIDENCE

log = logging.getLogger(__name__)

BATCHES = cast(Table, CorrectionBatch.__table__)
USERS = cast(Table, User.__table__)
MAX_CHUNK = 10_000
# What each decision template leaves on a tag it changes.
STATE_AFTER = {"rename": "corrected", "accept": "accepted", "reject": "rejected"}


@dataclass(frozen=True)
class BatchProgress:
    """How far a batch (or its undo) got: `processed` of `total` rows gone through so far."""

    batch_id: int
    total: int
    processed: int
    changed: int
    failed: int
    kept: int = 0


ProgressFn = Callable[[BatchProgress], None]


@dataclass(frozen=True)
class BatchRow:
    """A batch as the panel lists it."""

    id: int
    template: str
    params: dict[str, Any]
    selection: dict[str, Any]
    status: str
    matched: int
    processed: int
    changed: int
    failed: int
    restored: int
    kept: int
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    undone_by: str | None
    undone_at: datetime | None
    error: str | None

    @property
    def description(self) -> str:
        """What the batch does, in words."""
        return describe(self.template, self.params)

    @property
    def message(self) -> str:
        """How the batch ended, in words (what the panel says after a run)."""
        return summary(self) + (f". {self.error}" if self.error else "")

    @property
    def undoable(self) -> bool:
        """Whether Undo applies: it has finished (or stopped) and is not undone yet."""
        return self.status in ("completed", "failed", "cancelled", "interrupted", "undoing")


def summary(batch: BatchRow, out_of_review: int | None = None) -> str:
    """"Batch #4 (rename 'cat' to 'kitten') completed: 12 tags changed, 0 failed[, 3 photos out of review]"."""
    words = {"completed": "completed", "failed": "stopped by an error", "cancelled": "was cancelled",
             "running": "is running", "undoing": "is being undone", "undone": "was undone",
             "interrupted": "was interrupted"}[batch.status]
    text = (f"Batch #{batch.id} ({batch.description}) {words}: {unit(batch.template, batch.changed)} changed, "
            f"{fmt.count(batch.failed)} failed")
    if out_of_review is not None:
        text += f", {fmt.plural(out_of_review, 'photo')} out of review"
    if batch.processed < batch.matched and batch.status in ("failed", "cancelled", "interrupted"):
        text += f"; stopped after {fmt.count(batch.processed)} of {unit(batch.template, batch.matched)}"
    return text


def unit(template: str, n: int) -> str:
    """n rows of the template's unit: '1 tag', '2,000 photos'."""
    return fmt.plural(n, "photo" if template in sel.PHOTO_TEMPLATES else "tag")


def preview(actor: Actor, *, filters: BatchFilter, template: str, params: Mapping[str, Any],
            sample_size: int = sel.SAMPLE_SIZE, thumbnails: bool = True,
            settings: Settings | None = None) -> BatchPreview:
    """How many rows the batch would change, on how many photos, and a sample of them (newest first)."""
    actor.require("quality.batch")
    checked, filters = sel.check_template(template, params), sel.check_filter(filters)
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        matched, photos = sel.counts(s, org=org, filters=filters, template=template, params=checked)
        found = sel.sample(s, org=org, filters=filters, template=template, params=checked, size=sample_size)
    return BatchPreview(template=template, unit="photo" if template in sel.PHOTO_TEMPLATES else "tag",
                        matched=matched, photos=photos,
                        sample=tuple(sel.sample_photo(r, thumbnails=thumbnails) for r in found))


def _chunk_size(n: int) -> int:
    if not 1 <= n <= MAX_CHUNK:
        raise ValidationFailed(f"A chunk of {fmt.plural(n, 'row')} is not allowed.",
                               hint=f"Use 1 to {fmt.count(MAX_CHUNK)} rows per transaction.")
    return n


@dataclass(frozen=True)
class _Run:
    """One batch's fixed facts while it runs."""

    batch_id: int
    org: int
    me: int | None
    template: str
    params: dict[str, Any]
    filters: BatchFilter
    tag_bound: int
    photo_bound: int
    chunk_size: int
    now: datetime | None

    def moment(self) -> datetime:
        return self.now or utcnow()


def run_batch(actor: Actor, *, filters: BatchFilter, template: str, params: Mapping[str, Any],
              chunk_size: int = CHUNK_SIZE, progress: ProgressFn | None = None, now: datetime | None = None,
              settings: Settings | None = None) -> BatchRow:
    """Apply `template` to what `filters` selects, in chunks (see the module); returns the finished batch."""
    actor.require("quality.batch")
    checked, filters = sel.check_template(template, params), sel.check_filter(filters)
    run = _start(actor, filters=filters, template=template, params=checked, chunk_size=_chunk_size(chunk_size),
                 now=now, settings=settings)
    total, last, seen, changed, failed = _matched(run.batch_id, run.org, settings), 0, 0, 0, 0
    try:
        while True:
            n, last, ok, bad = rows.in_transaction(run.org, settings, partial(_chunk, run=run, last=last))
            if n == 0:
                break
            seen, changed, failed = seen + n, changed + ok, failed + bad
            if progress is not None:
                progress(BatchProgress(run.batch_id, total, seen, changed, failed))
    except BatchInterrupted:  # a read found its heartbeat stale and marked (and audited) it: leave it so
        log.warning("batch #%s was marked interrupted while it ran; stopping", run.batch_id)
        with org_session(run.org, settings=settings) as s:
            return batch_row(s, run.batch_id)
    except Exception as exc:  # the database went away, a bug: stop, say so, keep what was done (undoable)
        log.exception("batch #%s stopped", run.batch_id)
        return _finish(actor, run, settings, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
    except BaseException:  # stopped from outside (Streamlit's rerun or stop, Ctrl-C): cancelled, then go on
        _finish(actor, run, settings, status="cancelled", error=None)
        raise
    return _finish(actor, run, settings, status="completed", error=None)


def _start(actor: Actor, *, filters: BatchFilter, template: str, params: dict[str, Any], chunk_size: int,
           now: datetime | None, settings: Settings | None) -> _Run:
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        tag_bound = int(s.scalar(select(func.max(TAGS.c.id)).where(TAGS.c.organization_id == org)) or 0)
        photo_bound = int(s.scalar(select(func.max(TAGS.c.photo_id)).where(TAGS.c.organization_id == org)) or 0)
        matched, photos = sel.counts(s, org=org, filters=filters, template=template, params=params)
        batch = CorrectionBatch(organization_id=org, template=template, params=params,
                                selection={**filters.to_json(), "up_to_tag_id": tag_bound}, status="running",
                                matched=matched, created_by=actor.user_id, created_at=now or utcnow(),
                                heartbeat_at=utcnow())
        s.add(batch)
        s.flush()
        audit.record(s, actor=actor, action="quality.batch.start", entity_type="correction_batch",
                     entity_id=batch.id, before=None,
                     after={"template": template, "params": params, "selection": batch.selection,
                            "matched": matched},
                     summary=f"Started batch #{batch.id}: {describe(template, params)} on {unit(template, matched)}"
                             f" ({fmt.plural(photos, 'photo')})")
        return _Run(batch_id=batch.id, org=org, me=actor.user_id, template=template, params=params,
                    filters=filters, tag_bound=tag_bound, photo_bound=photo_bound, chunk_size=chunk_size, now=now)


def _matched(batch_id: int, org: int, settings: Settings | None) -> int:
    with org_session(org, settings=settings) as s:
        return int(s.scalar(select(BATCHES.c.matched).where(BATCHES.c.id == batch_id)) or 0)


def _chunk(s: Session, run: _Run, last: int) -> tuple[int, int, int, int]:
    """The next chunk after id `last`: (rows gone through, the last id, rows changed, rows refused)."""
    org, t, p, now = run.org, TAGS.c, sel.PHOTOS.c, run.moment()  # one moment per chunk: one UPDATE per outcome
    beat(s, run.batch_id)  # first: the batch's row lock, and the proof it still runs
    bound = t.id <= run.tag_bound
    if run.template in sel.PHOTO_TEMPLATES:
        keys = list(s.scalars(sel.photo_ids(org, run.filters, run.params)
                              .where(p.id > last, p.id <= run.photo_bound).limit(run.chunk_size)))
        if not keys:
            return 0, last, 0, 0
        rows.lock_photos(s, keys)
        still = list(s.scalars(select(p.id).where(rows.among(s, p.id, keys),
                                                  ~sel.live_label(p.id, run.params["label"]))))
        changes, photo_ids, n, new_last = _plan_add(run, still, now), keys, len(keys), keys[-1]
    else:
        found = s.execute(sel.tag_ids(org, run.filters, run.template, run.params)
                          .where(t.id > last, bound).limit(run.chunk_size)).all()
        if not found:
            return 0, last, 0, 0
        photo_ids = [r.photo_id for r in found]
        rows.lock_photos(s, photo_ids)
        current = rows.locked_tags(s, [r.id for r in found], *sel.selected_tags(org, run.filters),
                                   *sel.template_tags(run.template, run.params))
        changes, n, new_last = _plan(s, run, current, now), len(found), found[-1].id
    _apply_all(s, changes)
    ok = sum(1 for c in changes if c.error is None)
    photo_changes = rows.finish_chunk(s, org=org, rules=load_rules(s, org), photo_ids=photo_ids, set_by=run.me,
                                      now=now)
    rows.write_items(s, org=org, batch_id=run.batch_id, changes=[*changes, *photo_changes], now=now)
    rows.add_counts(s, run.batch_id, processed=n, changed=ok, failed=len(changes) - ok)
    return n, new_last, ok, len(changes) - ok


def _decided(run: _Run, state: str, label: str, now: datetime) -> dict[str, Any]:
    return {"label": label, "review_state": state, "reviewed_by": run.me, "reviewed_at": rows.stored(now)}


def _plan(s: Session, run: _Run, current: Sequence[Any], now: datetime) -> list[Change]:
    """The change each locked tag gets. A rename on a photo that already has the new label (live) rejects the
    old tag instead: the photo keeps one tag of that label."""
    if run.template == "remove":
        linked = rows.links(s, [r.id for r in current])
        return [Change(tag_id=r.id, photo_id=r.photo_id, action="remove",
                       before={**rows.values(r, WHOLE), "links": linked[r.id]}, after=None) for r in current]
    has_new: set[int] = set()
    if run.template == "rename":
        t = TAGS.c
        has_new = set(s.scalars(select(t.photo_id).where(rows.among(s, t.photo_id, {r.photo_id for r in current}),
                                                         t.label == run.params["to_label"],
                                                         t.review_state != "rejected")))
    changes = []
    for r in current:
        label, state = r.label, STATE_AFTER[run.template]
        if run.template == "rename":
            if r.photo_id in has_new:
                state = "rejected"
            else:
                label = run.params["to_label"]
                has_new.add(r.photo_id)
        changes.append(Change(tag_id=r.id, photo_id=r.photo_id, action=run.template,
                              before=rows.values(r, DECIDED), after=_decided(run, state, label, now)))
    return changes


def _plan_add(run: _Run, photo_ids: Sequence[int], moment: datetime) -> list[Change]:
    now = rows.stored(moment)
    return [Change(tag_id=None, photo_id=pid, action="add", before=None,
                   after={"organization_id": run.org, "photo_id": pid, "result_id": None, "label": run.params["label"],
                          "confidence": HUMAN_CONFIDENCE, "source": "human", "review_state": "accepted",
                          "reviewed_by": run.me, "reviewed_at": now, "created_at": now}) for pid in photo_ids]


def _apply(s: Session, changes: Sequence[Change]) -> None:
    """Make the changes in bulk (one statement per distinct outcome); raises what the database refuses."""
    adds = [c for c in changes if c.action == "add"]
    if adds:
        new = s.execute(insert(TAGS).returning(TAGS.c.id, sort_by_parameter_order=True),
                        [rows.column_values(c.after or {}) for c in adds]).scalars().all()
        for c, tag_id in zip(adds, new, strict=True):
            c.tag_id, c.after = tag_id, {"id": tag_id, **(c.after or {})}
    removed = [c.tag_id for c in changes if c.action == "remove" and c.tag_id is not None]
    if removed:
        s.execute(delete(TAGS).where(rows.among(s, TAGS.c.id, removed)))
        for c in changes:
            c.tag_id = None if c.action == "remove" else c.tag_id  # gone: the item keeps its id in `before`
    rows.set_decided(s, [(c.tag_id, c.after) for c in changes
                         if c.action in STATE_AFTER and c.after is not None and c.tag_id is not None])


def _apply_all(s: Session, changes: Sequence[Change]) -> None:
    """The changes in bulk; when the database refuses that, row by row, each refused one keeping its reason."""
    if not changes:
        return
    try:
        with s.begin_nested():
            _apply(s, changes)
        return
    except ROW_ERRORS:
        pass
    for c in changes:
        if c.action == "add":
            c.tag_id = None
            c.after = {k: v for k, v in (c.after or {}).items() if k != "id"}
        elif c.action == "remove":
            c.tag_id = (c.before or {})["id"]
        try:
            with s.begin_nested():
                _apply(s, [c])
        except ROW_ERRORS as exc:
            c.error = short_reason(exc)
            log.warning("batch row on photo %s refused (%s): counted failed, the rest goes on", c.photo_id, c.error)


def _finish(actor: Actor, run: _Run, settings: Settings | None, *, status: str, error: str | None) -> BatchRow:
    with org_session(run.org, settings=settings) as s:
        s.execute(update(BATCHES).where(BATCHES.c.id == run.batch_id)
                  .values(status=status, error=error, finished_at=utcnow()))
        row = batch_row(s, run.batch_id)
        out = s.scalar(select(func.count()).where(ITEMS.c.batch_id == run.batch_id, ITEMS.c.action == "photo",
                                                  ITEMS.c.before["status"].as_string() == "needs_review",
                                                  ITEMS.c.after["status"].as_string() == "completed"))
        audit.record(s, actor=actor, action="quality.batch.finish", entity_type="correction_batch",
                     entity_id=run.batch_id, before={"status": "running"},
                     after={"status": status, "matched": row.matched, "processed": row.processed,
                            "changed": row.changed, "failed": row.failed, "error": error},
                     summary=summary(row, int(out or 0)))
        return row


def batch_row(s: Session, batch_id: int) -> BatchRow:
    """Batch `batch_id` read in the caller's session (NotFound when the organization has none such)."""
    b, made, undid = BATCHES.c, USERS.alias("made"), USERS.alias("undid")
    r = s.execute(select(BATCHES, made.c.email.label("made_by"), undid.c.email.label("undid_by"))
                  .outerjoin(made, made.c.id == b.created_by).outerjoin(undid, undid.c.id == b.undone_by)
                  .where(b.id == batch_id)).one_or_none()
    if r is None:
        raise NotFound(f"Batch #{batch_id} is not in this organization.", hint="Pick a batch from the list.")
    return BatchRow(id=r.id, template=r.template, params=dict(r.params), selection=dict(r.selection),
                    status=r.status, matched=r.matched, processed=r.processed, changed=r.changed, failed=r.failed,
                    restored=r.restored, kept=r.kept, created_by=r.made_by, created_at=r.created_at,
                    finished_at=r.finished_at, undone_by=r.undid_by, undone_at=r.undone_at, error=r.error)


@dataclass(frozen=True)
class ItemRow:
    """One item of a batch as the panel lists it: a refused row (`error`) or one its undo kept."""

    id: int
    tag_id: int | None
    photo_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    error: str | None


def batch_items(actor: Actor, *, batch_id: int, which: str, limit: int = 50,
                settings: Settings | None = None) -> list[ItemRow]:
    """The batch's refused rows (`which` "failed") or the rows its undo kept ("kept"), oldest first."""
    actor.require("quality.view")
    if which not in ("failed", "kept"):
        raise ValidationFailed(f"There is no list of {which!r} rows.", hint="Ask for 'failed' or 'kept'.")
    i = ITEMS.c
    with org_session(actor.organization_id, settings=settings) as s:
        batch_row(s, batch_id)  # NotFound outside the organization
        picked = i.error.is_not(None) if which == "failed" else i.undo_result == "kept"
        found = s.execute(select(ITEMS).where(i.batch_id == batch_id, picked).order_by(i.id).limit(limit)).all()
    return [ItemRow(id=r.id, tag_id=r.tag_id, photo_id=r.photo_id, action=r.action, before=r.before, after=r.after,
                    error=r.error) for r in found]


def get_batch(actor: Actor, *, batch_id: int, now: datetime | None = None,
              settings: Settings | None = None) -> BatchRow:
    """One batch of the actor's organization (a running one whose process died reads as interrupted)."""
    actor.require("quality.view")
    expire_stale(actor.organization_id, now=now, settings=settings)
    with org_session(actor.organization_id, settings=settings) as s:
        if s.scalar(select(BATCHES.c.id).where(BATCHES.c.id == batch_id,
                                               BATCHES.c.organization_id == actor.organization_id)) is None:
            raise NotFound(f"Batch #{batch_id} is not in this organization.", hint="Pick a batch from the list.")
        return batch_row(s, batch_id)


def list_batches(actor: Actor, *, limit: int = 50, now: datetime | None = None,
                 settings: Settings | None = None) -> list[BatchRow]:
    """The organization's batches, newest first (running ones whose process died marked interrupted first)."""
    actor.require("quality.view")
    if not 1 <= limit <= 500:
        raise ValidationFailed(f"A list of {limit} batches is not allowed.", hint="Ask for 1 to 500.")
    org = actor.organization_id
    expire_stale(org, now=now, settings=settings)
    with org_session(org, settings=settings) as s:
        ids = s.scalars(select(BATCHES.c.id).where(BATCHES.c.organization_id == org)
                        .order_by(BATCHES.c.created_at.desc(), BATCHES.c.id.desc()).limit(limit)).all()
        return [batch_row(s, i) for i in ids]
