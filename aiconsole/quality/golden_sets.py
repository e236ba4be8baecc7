"""Golden sets: named, versioned, frozen snapshots of reviewed photos and their ground-truth labels.

A reviewed photo has ground truth, or a review (one whose every tag was rejected has no label: its truth is
"none of these", which a validation needs too). A set takes the reviewed photos a filter matches (a label of
their ground truth, its source, when it was set or reviewed), all of them or a uniform random sample of N
(the database's random()). Freezing copies each photo's sha256, filename and labels into the set in one
transaction from one read of the ground truth, so no review that commits meanwhile splits a photo's labels.
Saving a name again makes its next version; no function changes a version's items.

The Testing Lab (not built yet) reads a set through `golden_set_items` and registers each validation run on
the set it uses (`register_run`); until the run is released (`release_run`) or deleted, the set is locked and
`delete_golden_set` refuses. The delete locks the set's row first (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE
on SQLite) and registering takes a share lock on it (FOR SHARE), so a run registered meanwhile is either seen
by the delete or finds the set gone.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import normalize_label
from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import (
    GROUND_TRUTH_SOURCES,
    GoldenSet,
    GoldenSetItem,
    GoldenSetRun,
    GroundTruth,
    Photo,
    Review,
    User,
    ValidationRun,
)
from aiconsole.platform.db.sql import rowcount
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality.review_queue import write_session

SOURCES = GROUND_TRUTH_SOURCES  # what the source filter offers
MAX_GOLDEN_PHOTOS = 100_000
MAX_NAME = 200
MAX_DESCRIPTION = 2000
_INSERT_ROWS = 1000

SETS = cast(Table, GoldenSet.__table__)
ITEMS = cast(Table, GoldenSetItem.__table__)
RUNS = cast(Table, GoldenSetRun.__table__)
TRUTH = cast(Table, GroundTruth.__table__)
PHOTOS = cast(Table, Photo.__table__)
REVIEWS = cast(Table, Review.__table__)


@dataclass(frozen=True)
class GoldenFilters:
    """Which reviewed photos: with this ground-truth label, from this source, set or reviewed in [since, until)."""

    label: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class GoldenSetRow:
    """One version of a golden set as lists show it; `locked` while a validation run uses it."""

    id: int
    name: str
    version: int
    description: str
    photo_count: int
    label_count: int
    created_by: str | None
    created_at: datetime
    locked: bool
    selection: dict[str, Any]
    label_counts: dict[str, int]


@dataclass(frozen=True)
class GoldenItem:
    """A photo of a golden set as frozen: the Testing Lab's input. photo_id is None for a deleted photo."""

    photo_id: int | None
    sha256: str
    filename: str
    labels: tuple[str, ...]


def _checked(filters: GoldenFilters) -> GoldenFilters:
    if filters.source is not None and filters.source not in GROUND_TRUTH_SOURCES:
        raise ValidationFailed(f"Ground truth has no source {filters.source!r}.",
                               hint=f"Use one of: {', '.join(GROUND_TRUTH_SOURCES)}.")
    if filters.since and filters.until and filters.since >= filters.until:
        raise ValidationFailed("The date range is empty: 'since' is not before 'until'.")
    label = normalize_label(filters.label) if filters.label else None
    return GoldenFilters(label or None, filters.source, filters.since, filters.until)


def _between(column: Any, f: GoldenFilters) -> list[Any]:
    return [c for c in (f.since and column >= f.since, f.until and column < f.until) if c is not None]


def _candidates(org: int, f: GoldenFilters) -> Select[Any]:
    """The ids of the organization's reviewed photos the filters match."""
    p, t, r = PHOTOS.c, TRUTH.c, REVIEWS.c
    truth = [t.photo_id == p.id, t.organization_id == org, *_between(t.created_at, f)]
    reviewed: Any = exists().where(*truth, *([t.source == f.source] if f.source else []))
    if f.source in (None, "review") and f.label is None:
        reviewed = or_(reviewed, exists().where(r.photo_id == p.id, r.organization_id == org,
                                                *_between(r.submitted_at, f)))
    where = [p.organization_id == org, reviewed]
    if f.label is not None:
        where.append(exists().where(t.photo_id == p.id, t.organization_id == org, t.label == f.label))
    return select(p.id).where(*where)


def candidate_count(actor: Actor, *, filters: GoldenFilters, settings: Settings | None = None) -> int:
    """How many reviewed photos the filters match (a set takes them all, or a sample)."""
    actor.require("quality.view")
    f = _checked(filters)
    with org_session(actor.organization_id, settings=settings) as s:
        return int(s.scalar(select(func.count()).select_from(_candidates(actor.organization_id, f).subquery())) or 0)


def _name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean:
        raise ValidationFailed("A golden set needs a name.", hint="e.g. 'cats and dogs, March'.")
    if len(clean) > MAX_NAME:
        raise ValidationFailed(f"The name is longer than {MAX_NAME} characters.")
    return clean


def _selection(f: GoldenFilters, sample: int | None, matched: int) -> dict[str, Any]:
    return {**{k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(f).items()},
            "sample": sample, "matched": matched}


def create_golden_set(actor: Actor, *, name: str, filters: GoldenFilters, sample: int | None = None,
                      description: str = "", now: datetime | None = None,
                      settings: Settings | None = None) -> GoldenSetRow:
    """Freeze the next version of `name`: the matched reviewed photos (or a random `sample` of them)."""
    actor.require("quality.ground_truth")
    clean, f, org, now = _name(name), _checked(filters), actor.organization_id, now or utcnow()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"The description is longer than {MAX_DESCRIPTION:,} characters.")
    if sample is not None and not 1 <= sample <= MAX_GOLDEN_PHOTOS:
        raise ValidationFailed(f"A sample is 1 to {MAX_GOLDEN_PHOTOS:,} photos.")
    try:
        with write_session(org, settings) as s:
            return _freeze(s, actor, clean, f, sample, description, now)
    except IntegrityError:
        raise ConflictError(f"Someone saved a version of '{clean}' at the same moment.",
                            hint="Save again: yours becomes the next version.") from None


def _freeze(s: Session, actor: Actor, name: str, f: GoldenFilters, sample: int | None, description: str,
            now: datetime) -> GoldenSetRow:
    org = actor.organization_id
    candidates = _candidates(org, f)
    matched = int(s.scalar(select(func.count()).select_from(candidates.subquery())) or 0)
    if matched == 0:
        raise ValidationFailed("No reviewed photo matches these filters.",
                               hint="Widen the filters, or review photos first.")
    if sample is None and matched > MAX_GOLDEN_PHOTOS:
        raise ValidationFailed(f"{fmt.plural(matched, 'reviewed photo')} match; a golden set holds up to "
                               f"{MAX_GOLDEN_PHOTOS:,}.", hint="Narrow the filters or take a random sample.")
    existing = s.execute(select(SETS.c.name, func.max(SETS.c.version)).where(
        SETS.c.organization_id == org, func.lower(SETS.c.name) == name.lower()).group_by(SETS.c.name)).first()
    name, version = (existing[0], int(existing[1]) + 1) if existing else (name, 1)
    golden = GoldenSet(organization_id=org, name=name, version=version, description=description,
                       selection=_selection(f, sample, matched), created_by=actor.user_id, created_at=now)
    s.add(golden)
    s.flush()
    chosen = (candidates.order_by(func.random()).limit(sample) if sample is not None else candidates).subquery()
    p, t = PHOTOS.c, TRUTH.c
    # One statement reads every chosen photo's labels: one snapshot, so a concurrent review never splits one.
    rows = s.execute(select(p.id, p.sha256, p.filename, t.label).join(chosen, chosen.c.id == p.id)
                     .outerjoin(TRUTH, and_(t.photo_id == p.id, t.organization_id == org))
                     .order_by(p.id, t.label).execution_options(yield_per=_INSERT_ROWS))
    items = ({"organization_id": org, "golden_set_id": golden.id, "photo_id": pid, "sha256": group[0].sha256,
              "filename": group[0].filename, "labels": [r.label for r in group if r.label is not None]}
             for pid, group in ((pid, list(g)) for pid, g in itertools.groupby(rows, key=lambda r: r.id)))
    labels: Counter[str] = Counter()
    photos = 0
    while batch := list(itertools.islice(items, _INSERT_ROWS)):
        s.execute(insert(ITEMS), batch)
        photos += len(batch)
        labels.update(label for item in batch for label in item["labels"])
    golden.photo_count, golden.label_count, golden.label_counts = photos, sum(labels.values()), dict(labels)
    how = f"a random sample of {fmt.plural(photos, 'photo')}" if sample is not None else fmt.plural(photos, "photo")
    audit.record(s, actor=actor, action="golden_set.create", entity_type="golden_set", entity_id=golden.id,
                 before=None, after={"name": name, "version": version, "photos": photos,
                                     "labels": golden.label_count, "selection": golden.selection},
                 summary=f"Froze golden set '{name}' v{version}: {how} of {fmt.count(matched)} matched")
    return _row(golden, actor.email if actor.user_id else None, locked=False)


def _row(g: Any, email: str | None, *, locked: bool) -> GoldenSetRow:
    return GoldenSetRow(id=g.id, name=g.name, version=g.version, description=g.description,
                        photo_count=g.photo_count, label_count=g.label_count, created_by=email,
                        created_at=g.created_at, locked=locked, selection=dict(g.selection),
                        label_counts={str(k): int(v) for k, v in sorted(g.label_counts.items(),
                                                                         key=lambda kv: (-kv[1], kv[0]))})


def selection_of(row: GoldenSetRow) -> tuple[GoldenFilters, int | None]:
    """The filters and sample size a set version was frozen with."""
    sel = row.selection

    def moment(key: str) -> datetime | None:
        return None if sel.get(key) is None else datetime.fromisoformat(sel[key])

    return GoldenFilters(sel.get("label"), sel.get("source"), moment("since"), moment("until")), sel.get("sample")


def describe(row: GoldenSetRow, tz: str | None = None) -> str:
    """How a set version's photos were chosen, e.g. "a random sample of 200 of 1,234 reviewed photos with the
    label 'cat', from review"."""
    f, sample = selection_of(row)
    matched = int(row.selection.get("matched") or row.photo_count)
    how = (f"a random sample of {fmt.count(row.photo_count)} of {fmt.plural(matched, 'reviewed photo')}"
           if sample is not None else f"all {fmt.plural(matched, 'reviewed photo')} matched")
    parts = [f"with the label '{f.label}'" if f.label else "", f"from {f.source}" if f.source else "",
             f"since {fmt.when(f.since, tz)}" if f.since else "", f"before {fmt.when(f.until, tz)}" if f.until else ""]
    return ", ".join([how, *(p for p in parts if p)])


def freeze_again(actor: Actor, *, set_id: int, now: datetime | None = None,
                 settings: Settings | None = None) -> GoldenSetRow:
    """Freeze the next version of a set with the filters and sample size of version `set_id`."""
    row = get_golden_set(actor, set_id=set_id, settings=settings)
    filters, sample = selection_of(row)
    return create_golden_set(actor, name=row.name, filters=filters, sample=sample, description=row.description,
                             now=now, settings=settings)


def _in_use(org: int) -> Any:
    return exists().where(RUNS.c.golden_set_id == SETS.c.id, RUNS.c.organization_id == org,
                          RUNS.c.released_at.is_(None))


def list_golden_sets(actor: Actor, *, settings: Settings | None = None) -> list[GoldenSetRow]:
    """Every version of every golden set: by name, newest version first."""
    actor.require("quality.view")
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        rows = s.execute(select(GoldenSet, User.email, _in_use(org)).outerjoin(User, User.id == GoldenSet.created_by)
                         .where(GoldenSet.organization_id == org)
                         .order_by(func.lower(GoldenSet.name), GoldenSet.version.desc())).all()
        return [_row(g, email, locked=bool(locked)) for g, email, locked in rows]


def get_golden_set(actor: Actor, *, set_id: int, settings: Settings | None = None) -> GoldenSetRow:
    """One version of a golden set, or NotFound."""
    actor.require("quality.view")
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        found = s.execute(select(GoldenSet, User.email, _in_use(org)).outerjoin(User, User.id == GoldenSet.created_by)
                          .where(GoldenSet.organization_id == org, GoldenSet.id == set_id)).first()
    if found is None:
        raise NotFound(f"There is no golden set #{set_id} in this organization.", hint="Pick one from the list.")
    return _row(found[0], found[1], locked=bool(found[2]))


def golden_set_items(actor: Actor, *, set_id: int, chunk_rows: int = _INSERT_ROWS,
                     settings: Settings | None = None) -> Iterator[GoldenItem]:
    """The photos of a golden set with their frozen labels, by photo id, streamed: the Testing Lab's read."""
    get_golden_set(actor, set_id=set_id, settings=settings)
    return _items(actor.organization_id, set_id, chunk_rows, settings)


def _items(org: int, set_id: int, chunk_rows: int, settings: Settings | None) -> Iterator[GoldenItem]:
    i = ITEMS.c
    with org_session(org, settings=settings) as s:
        for r in s.execute(select(i.photo_id, i.sha256, i.filename, i.labels).where(
                i.golden_set_id == set_id, i.organization_id == org).order_by(i.id)
                .execution_options(yield_per=chunk_rows)):
            yield GoldenItem(r.photo_id, r.sha256, r.filename, tuple(r.labels))


def delete_golden_set(actor: Actor, *, set_id: int, settings: Settings | None = None) -> str:
    """Delete one version (audited); refused while a validation run uses it. Returns what was done."""
    actor.require("quality.ground_truth")
    org = actor.organization_id
    with write_session(org, settings) as s:
        golden = s.scalar(select(GoldenSet).where(GoldenSet.organization_id == org, GoldenSet.id == set_id)
                          .with_for_update())
        if golden is None:
            raise NotFound(f"There is no golden set #{set_id} in this organization.",
                           hint="It may have been deleted already.")
        runs = list(s.scalars(select(RUNS.c.validation_run_id).where(
            RUNS.c.golden_set_id == set_id, RUNS.c.released_at.is_(None)).order_by(RUNS.c.validation_run_id)))
        if runs:
            raise _locked(golden, runs)
        s.execute(delete(SETS).where(SETS.c.id == set_id, SETS.c.organization_id == org))
        audit.record(s, actor=actor, action="golden_set.delete", entity_type="golden_set", entity_id=set_id,
                     before={"name": golden.name, "version": golden.version, "photos": golden.photo_count,
                             "selection": golden.selection}, after=None,
                     summary=f"Deleted golden set '{golden.name}' v{golden.version}")
        return f"Deleted golden set '{golden.name}' v{golden.version} ({fmt.plural(golden.photo_count, 'photo')})."


def _locked(golden: Any, runs: list[int]) -> ConflictError:
    noun = "run" if len(runs) == 1 else "runs"
    return ConflictError(f"Golden set '{golden.name}' v{golden.version} is in use by validation {noun} "
                         f"{', '.join(f'#{r}' for r in runs)}; a set never changes under a running validation.",
                         hint="Delete it once the Testing Lab has finished with it.")


def register_run(actor: Actor, *, set_id: int, run_id: int, settings: Settings | None = None) -> None:
    """Lock a golden set for validation run `run_id` (the Testing Lab calls this as a run starts)."""
    actor.require("testing.run")
    org = actor.organization_id
    with write_session(org, settings) as s:
        # FOR SHARE: a delete of the set (FOR UPDATE) waits for this registration, or this one for the delete.
        golden = s.scalar(select(GoldenSet).where(GoldenSet.organization_id == org, GoldenSet.id == set_id)
                          .with_for_update(read=True))
        run = s.scalar(select(ValidationRun.id).where(ValidationRun.organization_id == org, ValidationRun.id == run_id))
        if golden is None or run is None:
            raise NotFound(f"There is no {'golden set' if golden is None else 'validation run'} "
                           f"#{set_id if golden is None else run_id} in this organization.")
        # A run registered again (after a release) takes the lock again on its row.
        again = rowcount(s.execute(update(RUNS).where(
            RUNS.c.golden_set_id == set_id, RUNS.c.validation_run_id == run_id, RUNS.c.organization_id == org)
            .values(registered_at=utcnow(), released_at=None)))
        if not again:
            s.execute(insert(RUNS).values(organization_id=org, golden_set_id=set_id, validation_run_id=run_id,
                                          registered_at=utcnow()))
        audit.record(s, actor=actor, action="golden_set.lock", entity_type="golden_set", entity_id=set_id,
                     before=None, after={"validation_run": run_id},
                     summary=f"Validation run #{run_id} uses golden set '{golden.name}' v{golden.version}")


def release_run(actor: Actor, *, set_id: int, run_id: int, settings: Settings | None = None) -> bool:
    """Release run `run_id`'s lock on a golden set (the run finished); False when it held none."""
    actor.require("testing.run")
    org = actor.organization_id
    with write_session(org, settings) as s:
        done = rowcount(s.execute(update(RUNS).where(
            RUNS.c.organization_id == org, RUNS.c.golden_set_id == set_id, RUNS.c.validation_run_id == run_id,
            RUNS.c.released_at.is_(None)).values(released_at=utcnow())))
        if done:
            audit.record(s, actor=actor, action="golden_set.unlock", entity_type="golden_set", entity_id=set_id,
                         before={"validation_run": run_id}, after=None,
                         summary=f"Validation run #{run_id} released golden set #{set_id}")
        return bool(done)
