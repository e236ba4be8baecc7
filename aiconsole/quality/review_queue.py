"""The review queue: which photos await a reviewer, in which order, and the lease a reviewer holds on one.

A photo awaits review while it is processed (completed or needs_review) and has an AI tag no reviewer has
decided yet that is in the review band: recorded as needs_review, or between the reject and accept
thresholds of the organization's current rules (`pipeline.rules.verdict_sql`, so a threshold change puts
tags into the band and takes others out). Orders: lowest confidence (of those band tags), oldest, a
uniform random sample, deterministic per reviewer session seed, or disagreement. The random order samples
every processed photo with an undecided AI tag, the accepted ones included: it is the only order whose
decisions estimate the AI's precision without bias. The disagreement order takes the photos with an
undecided AI tag whose sources (provider, model, prompt version) disagree: the Jaccard similarity of their
label sets below the organization's threshold, lowest first (quality.disagreement keeps that fact; the
order's claim, preview and size bring it up to date by one bounded step first).

A reviewer claims the photo they are shown: a lease in review_claims (one per photo), taken with
FOR UPDATE SKIP LOCKED on PostgreSQL and inside BEGIN IMMEDIATE on SQLite, so two reviewers never get the
same photo. A claim ends at `expires_at` (the photo returns to the queue), on skip (`release`) or logout
(`release_all`). A reviewer holds one claim: asking for the next photo gives back their live claim first
(resume where you left off) while it still matches the order and filters. Submitting is `decisions.py`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    case,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import RuleSet, load_rules
from aiconsole.platform import cache
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.sql import rowcount
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import disagreement, queue_next
from aiconsole.quality.queue_sql import (
    CLAIMS,
    DISAGREEMENTS,
    PHOTOS,
    RESULTS,
    TAGS,
    QueueFilters,
    photo_match,
    random_key,
    tag_match,
)

# The orders the queue offers (review_claims.queue_order allows them all, and second_review: second_review.py's).
QUEUE_ORDERS = ("lowest_confidence", "oldest", "random", "disagreement")
RANDOM_ORDER_NOTE = ("Random sample: the only order whose decisions estimate the AI's precision without bias "
                     "(it includes photos whose tags were all accepted).")
DISAGREEMENT_ORDER_NOTE = ("Disagreement: photos where two providers, models or prompt versions produced different "
                           "tags (Jaccard similarity of their labels below the threshold), the least alike first.")
DEFAULT_CLAIM_SECONDS = 600
# What the screen shows as left is counted at most this often per organization, order and filters, for every
# reviewer at once: an exact count reads the whole band (100-170 ms at a million photos), the claim 15 ms.
LEFT_TTL_S = 30.0
LEFT_CACHE_PREFIX = "review_left"
MAX_CLAIM_SECONDS = 8 * 3600
_CLAIM_ATTEMPTS = 8
_DEADLOCK, _DEADLOCK_RETRIES = "40P01", 3


@dataclass(frozen=True)
class ReviewTag:
    """A tag awaiting the reviewer's decision, with its current rule verdict and where it came from."""

    tag_id: int
    label: str
    confidence: float
    state: str
    verdict: str
    provider: str | None
    model: str | None
    prompt_version_id: int | None


@dataclass(frozen=True)
class QueueLeft:
    """What the review screen says is left: `photos` awaiting a decision in this order (for the random sample,
    the photos in the review band, as the other orders count), and for the random sample the photos it draws
    from (`sampled_from`; `sampled_exact` False when estimated)."""

    photos: int
    sampled_from: int | None = None
    sampled_exact: bool = True
    counted_at: datetime | None = None


@dataclass(frozen=True)
class ReviewItem:
    """The photo a reviewer holds, under the claim `token` (what `decisions.submit_review` is given)."""

    token: str
    photo_id: int
    filename: str
    storage_uri: str
    width: int
    height: int
    created_at: datetime
    queue_order: str
    claimed_at: datetime
    expires_at: datetime
    tags: tuple[ReviewTag, ...]


def check_order(order: str) -> str:
    """`order` if the queue offers it, else ValidationFailed naming the ones it does."""
    if order not in QUEUE_ORDERS:
        raise ValidationFailed(f"The review queue has no order {order!r}.",
                               hint=f"Use one of: {', '.join(QUEUE_ORDERS)}.")
    return order


def reviewer_id(actor: Actor) -> int:
    """The reviewing user's id; reviews are made by people, never by a system actor."""
    if actor.user_id is None:
        raise ValidationFailed("Reviews are made by people: this action needs a logged-in user.",
                               hint="Log in as a reviewer or an admin of the organization.")
    return actor.user_id


@contextmanager
def write_session(organization_id: int, settings: Settings | None = None) -> Iterator[Session]:
    """An org session whose transaction holds SQLite's write lock from its first statement (BEGIN IMMEDIATE),
    so concurrent claims serialize instead of failing "database is locked"; on PostgreSQL a plain org session."""
    with org_session(organization_id, settings=settings) as session:
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def _candidates(org: int, me: int, rules: RuleSet, order: str, filters: QueueFilters, seed: int,
                skipped: Sequence[int], now: datetime) -> Select[Any]:
    """Photo ids in the order they would be handed to reviewer `me`: their own live claim first, then `order`;
    photos another reviewer holds and those `me` skipped are left out."""
    p, c = PHOTOS.c, CLAIMS.c
    held_by_other = exists(select(c.id).where(c.photo_id == p.id, c.expires_at > now, c.reviewer_id != me))
    mine = exists(select(c.id).where(c.photo_id == p.id, c.expires_at > now, c.reviewer_id == me))
    conds = [*photo_match(org, rules, order, filters), ~held_by_other]
    if skipped:
        conds.append(p.id.not_in([int(i) for i in skipped]))
    keys: list[Any] = [case((mine, 0), else_=1)]
    if order == "lowest_confidence":
        keys.append(select(func.min(TAGS.c.confidence)).where(*tag_match(org, rules, order, filters))
                    .scalar_subquery())
    elif order == "random":
        keys.append(random_key(p.id, seed))
    elif order == "disagreement":
        keys.append(select(DISAGREEMENTS.c.jaccard).where(DISAGREEMENTS.c.photo_id == p.id).scalar_subquery())
    keys += [p.id] if order in ("lowest_confidence", "disagreement") else [p.created_at, p.id]  # as queue_next's
    return select(p.id).where(*conds).order_by(*keys)


def _claim_seconds(seconds: int) -> int:
    if not 1 <= seconds <= MAX_CLAIM_SECONDS:
        raise ValidationFailed(f"A claim of {seconds} s is not allowed.",
                               hint=f"Claims last between 1 s and {MAX_CLAIM_SECONDS // 3600} hours.")
    return seconds


def take_claim(session: Session, *, org: int, me: int, photo_id: int, order: str, now: datetime,
               expires: datetime) -> bool:
    """Make `photo_id` this reviewer's one claim (keeping the token of a claim they already hold on it);
    False when another reviewer's live claim holds it."""
    c = CLAIMS.c
    session.execute(delete(CLAIMS).where(c.reviewer_id == me, c.photo_id != photo_id))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(CLAIMS).values(organization_id=org, photo_id=photo_id, reviewer_id=me,
                                 token=str(uuid.uuid4()), queue_order=order, claimed_at=now, expires_at=expires)
    own = c.reviewer_id == me
    upsert = stmt.on_conflict_do_update(
        index_elements=[c.photo_id],
        set_={"reviewer_id": me, "expires_at": expires,
              "token": case((own, c.token), else_=stmt.excluded.token),
              "queue_order": case((own, c.queue_order), else_=stmt.excluded.queue_order),
              "claimed_at": case((own, c.claimed_at), else_=stmt.excluded.claimed_at)},
        where=or_(c.expires_at <= now, own),
    ).returning(c.id)
    return session.execute(upsert).first() is not None


def review_tags(session: Session, *, photo_id: int, rules: RuleSet) -> tuple[ReviewTag, ...]:
    """The photo's tags awaiting a decision, highest confidence first, each with its current verdict."""
    t, r = TAGS.c, RESULTS.c
    rows = session.execute(
        select(t.id, t.label, t.confidence, t.review_state, r.ai_provider, r.model, r.prompt_version_id)
        .select_from(TAGS.outerjoin(RESULTS, r.id == t.result_id))
        .where(t.photo_id == photo_id, t.reviewed_at.is_(None))
        .order_by(t.confidence.desc(), t.id)
    ).all()
    return tuple(ReviewTag(tag_id=row.id, label=row.label, confidence=float(row.confidence), state=row.review_state,
                           verdict=rules.verdict(row.label, float(row.confidence)), provider=row.ai_provider,
                           model=row.model, prompt_version_id=row.prompt_version_id) for row in rows)


def _item(session: Session, *, photo_id: int, me: int, rules: RuleSet) -> ReviewItem:
    claim = session.execute(select(CLAIMS).where(CLAIMS.c.photo_id == photo_id, CLAIMS.c.reviewer_id == me)).one()
    photo = session.execute(select(PHOTOS).where(PHOTOS.c.id == photo_id)).one()
    return ReviewItem(token=claim.token, photo_id=photo_id, filename=photo.filename, storage_uri=photo.storage_uri,
                      width=photo.width, height=photo.height, created_at=photo.created_at,
                      queue_order=claim.queue_order, claimed_at=claim.claimed_at, expires_at=claim.expires_at,
                      tags=review_tags(session, photo_id=photo_id, rules=rules))


def claim_next(actor: Actor, *, order: str = "lowest_confidence", filters: QueueFilters | None = None,
               seed: int = 0, skipped: Sequence[int] = (), claim_seconds: int = DEFAULT_CLAIM_SECONDS,
               now: datetime | None = None, settings: Settings | None = None) -> ReviewItem | None:
    """Claim the next photo for the acting reviewer (their live claim first, if it still matches); None when
    the queue (as filtered, less `skipped`) is empty. The claim lasts `claim_seconds` from now."""
    actor.require("review.tags")
    me, order = reviewer_id(actor), check_order(order)
    filters, now = filters or QueueFilters(), now or utcnow()
    expires = now + timedelta(seconds=_claim_seconds(claim_seconds))
    org = actor.organization_id
    # My expired claims go first, in their own transaction: a claim transaction that deleted them while taking
    # another reviewer's expired claim could wait on that reviewer doing the same the other way round.
    with write_session(org, settings) as s:
        s.execute(delete(CLAIMS).where(CLAIMS.c.reviewer_id == me, CLAIMS.c.expires_at <= now))
    _refreshed(actor, order, now, settings)
    for attempt in range(_DEADLOCK_RETRIES + 1):
        try:
            return _claim(org, me, order, filters, seed, list(skipped), now, expires, settings)
        except OperationalError as exc:  # PostgreSQL broke a rare lock cycle (a stale snapshot's upsert)
            if getattr(exc.orig, "sqlstate", None) != _DEADLOCK or attempt == _DEADLOCK_RETRIES:
                raise
    return None


def _mine(session: Session, *, org: int, me: int, rules: RuleSet, order: str, filters: QueueFilters, now: datetime,
          passed: Sequence[int]) -> int | None:
    """The photo of my live claim, while it still matches the order and filters and was not passed over."""
    c, p = CLAIMS.c, PHOTOS.c
    return session.scalar(select(p.id).join(CLAIMS, c.photo_id == p.id).where(
        c.reviewer_id == me, c.expires_at > now, p.id.not_in([int(i) for i in passed] or [0]),
        *photo_match(org, rules, order, filters)).limit(1))


def _claim(org: int, me: int, order: str, filters: QueueFilters, seed: int, passed: list[int], now: datetime,
           expires: datetime, settings: Settings | None) -> ReviewItem | None:
    with write_session(org, settings) as s:
        rules = load_rules(s, org)
        postgres = s.get_bind().dialect.name == "postgresql"
        for _ in range(_CLAIM_ATTEMPTS):
            photo_id = _mine(s, org=org, me=me, rules=rules, order=order, filters=filters, now=now, passed=passed)
            if photo_id is None:
                photo_id = queue_next.next_photo(s, order=order, org=org, me=me, rules=rules, filters=filters,
                                                 now=now, passed=passed, seed=seed)
            if photo_id is None:
                return None
            if postgres and s.scalar(select(PHOTOS.c.id).where(PHOTOS.c.id == photo_id).with_for_update(
                    skip_locked=True, key_share=True)) is None:
                # Another claim or submit holds the photo right now (NO KEY UPDATE: a submit's foreign-key
                # checks, KEY SHARE on its photo, never wait on a claimer): pass it over.
                passed.append(photo_id)
                continue
            if take_claim(s, org=org, me=me, photo_id=photo_id, order=order, now=now, expires=expires):
                # The claim row is where reviewers meet: a submit of this photo that held it has committed by
                # now, so a fresh read says whether the photo still waits (its tags may all be decided).
                if s.scalar(select(PHOTOS.c.id).where(PHOTOS.c.id == photo_id,
                                                      *photo_match(org, rules, order, filters))) is not None:
                    return _item(s, photo_id=photo_id, me=me, rules=rules)
                s.execute(delete(CLAIMS).where(CLAIMS.c.photo_id == photo_id, CLAIMS.c.reviewer_id == me))
            # Another reviewer claimed or reviewed it after this statement's snapshot: try the next photo.
            passed.append(photo_id)
    return None


def preview(actor: Actor, *, order: str = "lowest_confidence", filters: QueueFilters | None = None, seed: int = 0,
            limit: int = 20, now: datetime | None = None, settings: Settings | None = None) -> list[int]:
    """The ids of the next `limit` photos the acting reviewer would be handed, without claiming any."""
    actor.require("quality.view")
    if not 1 <= limit <= 1000:
        raise ValidationFailed(f"A preview of {limit} photos is not allowed.", hint="Ask for 1 to 1000.")
    org, order = actor.organization_id, check_order(order)
    _refreshed(actor, order, now or utcnow(), settings)
    with org_session(org, settings=settings) as s:
        query = _candidates(org, actor.user_id or 0, load_rules(s, org), order, filters or QueueFilters(), seed,
                            (), now or utcnow())
        return [int(i) for i in s.scalars(query.limit(limit))]


def queue_size(actor: Actor, *, order: str = "lowest_confidence", filters: QueueFilters | None = None,
               settings: Settings | None = None) -> int:
    """How many photos await review in this order's queue as filtered (claimed ones included)."""
    actor.require("quality.view")
    org, order = actor.organization_id, check_order(order)
    filters = filters or QueueFilters()
    _refreshed(actor, order, utcnow(), settings)
    with org_session(org, settings=settings) as s:
        return _size(s, org=org, rules=load_rules(s, org), order=order, filters=filters)


def _size(s: Session, *, org: int, rules: RuleSet, order: str, filters: QueueFilters) -> int:
    if order == "disagreement":
        return queue_next.disagreement_size(s, org=org, rules=rules, filters=filters)
    if order != "random" and queue_next.photo_level_only(filters):
        return queue_next.band_size(s, org=org, rules=rules, filters=filters)
    conds = photo_match(org, rules, order, filters)
    return int(s.scalar(select(func.count()).select_from(PHOTOS).where(*conds)) or 0)


def queue_left(actor: Actor, *, order: str = "lowest_confidence", filters: QueueFilters | None = None,
               max_age_s: float = LEFT_TTL_S, settings: Settings | None = None) -> QueueLeft:
    """What the review screen shows as left (QueueLeft), counted at `counted_at`, at most `max_age_s` ago (one
    count serves every reviewer of the organization; 0 counts now). The random sample's own queue is nearly
    every processed photo (600 ms to count at a million), so it shows the band's photos, as the other orders
    count them, and the photos it draws from, estimated (queue_next.random_population); other orders their size."""
    actor.require("quality.view")
    org, order, filters = actor.organization_id, check_order(order), filters or QueueFilters()
    key = (LEFT_CACHE_PREFIX, org, order, *(None if v is None else str(v) for v in (
        filters.label, filters.provider, filters.model, filters.prompt_version_id, filters.since, filters.until)))
    photos, drawn, exact, at = cache.cached(key, max_age_s, lambda: _left(actor, order, filters, settings),
                                            settings=settings)
    return QueueLeft(photos=int(photos), sampled_from=None if drawn is None else int(drawn),
                     sampled_exact=bool(exact), counted_at=datetime.fromisoformat(str(at)))


def _left(actor: Actor, order: str, filters: QueueFilters, settings: Settings | None) -> list[Any]:
    """[photos, sampled from, exact?, when] as the cache keeps them (plain JSON)."""
    at = utcnow().isoformat()
    if order != "random":
        return [queue_size(actor, order=order, filters=filters, settings=settings), None, True, at]
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        rules = load_rules(s, org)
        band = _size(s, org=org, rules=rules, order="lowest_confidence", filters=filters)
        drawn, exact = queue_next.random_population(s, org=org, rules=rules, filters=filters)
    return [band, drawn, exact, at]


def _refreshed(actor: Actor, order: str, now: datetime, settings: Settings | None) -> None:
    """The disagreement order reads facts a bounded refresh step brings up to date first."""
    if order == "disagreement":
        disagreement.refresh(actor, now=now, settings=settings)


def release(actor: Actor, *, token: str, settings: Settings | None = None) -> bool:
    """Give the claim `token` back (skip): the photo returns to the queue at once. False if not held."""
    actor.require("review.tags")
    me = reviewer_id(actor)
    with write_session(actor.organization_id, settings) as s:
        return rowcount(s.execute(delete(CLAIMS).where(CLAIMS.c.token == token, CLAIMS.c.reviewer_id == me))) > 0


def release_all(actor: Actor, *, settings: Settings | None = None) -> int:
    """Give back every claim the acting user holds (logout); returns how many there were."""
    if actor.user_id is None:
        return 0
    with write_session(actor.organization_id, settings) as s:
        return rowcount(s.execute(delete(CLAIMS).where(CLAIMS.c.reviewer_id == actor.user_id)))


def held_claim(session: Session, *, token: str, org: int, lock: bool) -> Any:
    """The claim row named `token` in `org` (locked for the transaction when `lock`), or None.

    With `lock` on PostgreSQL the claim's photo is locked first, then the claim: the order claim_next takes
    them in (it skips a locked photo rather than waiting), so a submit and a claim never wait on each other
    in a cycle."""
    query = select(CLAIMS).where(CLAIMS.c.token == token, CLAIMS.c.organization_id == org)
    if lock and session.get_bind().dialect.name == "postgresql":
        photo_id = session.scalar(select(CLAIMS.c.photo_id).where(CLAIMS.c.token == token,
                                                                  CLAIMS.c.organization_id == org))
        if photo_id is not None:
            session.execute(select(PHOTOS.c.id).where(PHOTOS.c.id == photo_id).with_for_update(key_share=True))
        query = query.with_for_update()
    return session.execute(query).first()

