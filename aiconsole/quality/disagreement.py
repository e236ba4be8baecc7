"""Provider and prompt-version disagreement: for each photo with results from two or more sources (provider,
model, prompt version), the Jaccard similarity of the sources' label sets, lowest pair first.

The fact lives in photo_disagreements, one row per photo: the lowest pair's Jaccard and its two results. It is
kept up to date by pulling, not pushed by the pipeline (which sits below quality and cannot call it): a
refresh reads the results stamped after the organization's watermark (disagreement_refresh), oldest first in
bounded chunks through the results' (organization, created_at) index, recomputes every photo they touch from
all of that photo's results, and moves the watermark. The review queue's claim, preview and size in the
disagreement order and the Quality page's reads run one bounded step; `refresh_all` (the CLI) runs to the end.

A result is counted once it is SETTLE_S old: a recording transaction that stamped it may commit a moment
after a later one, and a watermark that had passed it would never see it. Each source's newest result
stands for it; a completed result without tags is a source that saw nothing (two such agree: Jaccard 1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any, cast

from sqlalchemy import Table, and_, delete, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import jaccard, normalize_label
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import AiProcessingResult, DisagreementRefresh, PhotoDisagreement
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.settings import Settings

RESULTS = cast(Table, AiProcessingResult.__table__)
DISAGREEMENTS = cast(Table, PhotoDisagreement.__table__)
REFRESH = cast(Table, DisagreementRefresh.__table__)
TAGGED = ("completed", "needs_review")  # results whose tags are a source's answer (failed ones have none)
SETTLE_S = 30.0
CHUNK = 2000  # results per refresh step
STEP_CHUNKS = 1  # steps a screen's read runs before it answers


@dataclass(frozen=True)
class Source:
    """One source's answer for a photo: its newest tagged result and that result's labels."""

    result_id: int
    provider: str
    model: str
    prompt_version_id: int | None
    labels: frozenset[str]

    @property
    def key(self) -> tuple[str, str, int | None]:
        """(provider, model, prompt version): what makes two results two sources."""
        return (self.provider, self.model, self.prompt_version_id)


@dataclass(frozen=True)
class Pair:
    """A photo's least similar two sources and their Jaccard similarity."""

    jaccard: float
    a: Source
    b: Source
    sources: int


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did: results read, photos recomputed, and whether it reached the newest settled result."""

    results: int
    photos: int
    done: bool


def labels_of(tags: Any) -> frozenset[str]:
    """The normalized labels of a result's tags document (a list of {"label": ..., "confidence": ...})."""
    out = set()
    for tag in tags or ():
        label = tag.get("label") if isinstance(tag, dict) else None
        if isinstance(label, str) and normalize_label(label):
            out.add(normalize_label(label))
    return frozenset(out)


def lowest_pair(results: Iterable[Source]) -> Pair | None:
    """The least similar two of the sources (each source's newest result stands for it); None under two.
    Ties go to the older results, so the pair is the same on every refresh."""
    newest: dict[tuple[str, str, int | None], Source] = {}
    for src in sorted(results, key=lambda s: s.result_id):
        newest[src.key] = src
    sources = sorted(newest.values(), key=lambda s: s.result_id)
    if len(sources) < 2:
        return None
    score, a, b = min(((jaccard(a.labels, b.labels), a, b) for a, b in combinations(sources, 2)),
                      key=lambda t: (t[0], t[1].result_id, t[2].result_id))
    return Pair(jaccard=score, a=a, b=b, sources=len(sources))


def sources_of(session: Session, photo_ids: Sequence[int]) -> dict[int, list[Source]]:
    """Every tagged result of these photos as sources, by photo."""
    r = RESULTS.c
    out: dict[int, list[Source]] = defaultdict(list)
    rows = session.execute(select(r.id, r.photo_id, r.ai_provider, r.model, r.prompt_version_id, r.tags)
                           .where(r.photo_id.in_([int(i) for i in photo_ids]), r.status.in_(TAGGED)))
    for row in rows:
        out[int(row.photo_id)].append(Source(result_id=int(row.id), provider=row.ai_provider, model=row.model,
                                             prompt_version_id=row.prompt_version_id, labels=labels_of(row.tags)))
    return out


def recompute(session: Session, *, org: int, photo_ids: Sequence[int], now: datetime) -> int:
    """Write the disagreement fact of these photos again from all their results; how many have one."""
    if not photo_ids:
        return 0
    by_photo = sources_of(session, photo_ids)
    rows = []
    for photo_id in photo_ids:
        pair = lowest_pair(by_photo.get(int(photo_id), ()))
        if pair is not None:
            rows.append({"photo_id": int(photo_id), "organization_id": org, "jaccard": pair.jaccard,
                         "sources": pair.sources, "result_a_id": pair.a.result_id, "result_b_id": pair.b.result_id,
                         "computed_at": now})
    session.execute(delete(DISAGREEMENTS).where(DISAGREEMENTS.c.organization_id == org,
                                                DISAGREEMENTS.c.photo_id.in_([int(i) for i in photo_ids])))
    if rows:
        session.execute(insert(DISAGREEMENTS), rows)
    return len(rows)


def _watermark(session: Session, org: int, now: datetime) -> Any:
    """The organization's refresh row, locked for this transaction; None while another refresh holds it."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = select(REFRESH).where(REFRESH.c.organization_id == org)
    if postgres:  # a screen never waits on another screen's refresh: that one is counting the same results
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).first()
    if row is not None or (postgres and session.scalar(select(REFRESH.c.organization_id).where(
            REFRESH.c.organization_id == org)) is not None):
        return row
    ins = (pg_insert if postgres else sqlite_insert)(REFRESH).values(
        organization_id=org, through_created_at=None, through_result_id=0, refreshed_at=now)
    session.execute(ins.on_conflict_do_nothing(index_elements=[REFRESH.c.organization_id]))
    return session.execute(query).first()


def refresh_step(session: Session, *, org: int, now: datetime, chunk: int = CHUNK) -> RefreshReport:
    """One bounded step in the caller's transaction: the next `chunk` settled results after the watermark, the
    photos they touch recomputed, the watermark moved past them."""
    mark = _watermark(session, org, now)
    if mark is None:
        return RefreshReport(results=0, photos=0, done=True)
    r = RESULTS.c
    conds = [r.organization_id == org, r.created_at <= now - timedelta(seconds=SETTLE_S)]
    if mark.through_created_at is not None:
        t, i = mark.through_created_at, int(mark.through_result_id)
        conds += [r.created_at >= t, or_(r.created_at > t, and_(r.created_at == t, r.id > i))]
    read = session.execute(select(r.id, r.photo_id, r.created_at).where(*conds)
                           .order_by(r.created_at, r.id).limit(chunk)).all()
    if not read:  # nothing new: nothing written, so a screen's refresh costs two indexed reads
        return RefreshReport(results=0, photos=0, done=True)
    photos = list(dict.fromkeys(int(row.photo_id) for row in read))
    recompute(session, org=org, photo_ids=photos, now=now)
    last = read[-1]
    session.execute(REFRESH.update().where(REFRESH.c.organization_id == org).values(
        through_created_at=last.created_at, through_result_id=int(last.id), refreshed_at=now))
    return RefreshReport(results=len(read), photos=len(photos), done=len(read) < chunk)


def refresh(actor: Actor, *, steps: int = STEP_CHUNKS, chunk: int = CHUNK, now: datetime | None = None,
            settings: Settings | None = None) -> RefreshReport:
    """Bring the acting organization's disagreement facts up to date by at most `steps` chunks, each its own
    transaction (quality.view: the facts are derived from results anyone who sees the Quality page sees)."""
    actor.require("quality.view")
    now = now or utcnow()
    results = photos = 0
    for _ in range(max(steps, 1)):
        with org_session(actor.organization_id, settings=settings) as s:
            if s.get_bind().dialect.name == "sqlite":
                s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            step = refresh_step(s, org=actor.organization_id, now=now, chunk=chunk)
        results, photos = results + step.results, photos + step.photos
        if step.done:
            return RefreshReport(results=results, photos=photos, done=True)
    return RefreshReport(results=results, photos=photos, done=False)


def refresh_all(actor: Actor, *, chunk: int = CHUNK, now: datetime | None = None,
                settings: Settings | None = None) -> RefreshReport:
    """Refresh until every settled result is counted (the CLI's command, a first run over a large history)."""
    now = now or utcnow()
    results = photos = 0
    while True:
        step = refresh(actor, steps=50, chunk=chunk, now=now, settings=settings)
        results, photos = results + step.results, photos + step.photos
        if step.done:
            return RefreshReport(results=results, photos=photos, done=True)
