"""The second, blind review of a photo routed to double review (`double_review.route`).

Anyone who reviews tags, except the photo's first reviewer, claims a waiting photo with the review queue's
lease (a review_claims row, queue order 'second_review'; one claim per reviewer, so taking one gives back
any other). They are shown the tags as the AI produced them, read from the first review's decisions (label
before, confidence, rule verdict): never the first reviewer's approve, reject, rename or added labels.

Submitting records a Review and its ReviewDecisions like a first review, validated by the same rules, and
marks the double review 'reviewed'; it changes no tag state and no ground truth (those stay the first
review's until an admin adjudicates, `agreement.adjudicate`). Submitting the same claim twice records once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import DoubleReview, Review
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality.double_review import SECOND_REVIEW
from aiconsole.quality.queue_sql import CLAIMS, PHOTOS
from aiconsole.quality.review_queue import (
    DEFAULT_CLAIM_SECONDS,
    MAX_CLAIM_SECONDS,
    ReviewItem,
    ReviewTag,
    held_claim,
    reviewer_id,
    take_claim,
    write_session,
)
from aiconsole.quality.review_record import (
    DECISIONS,
    ReviewOutcome,
    TagDecision,
    added_row,
    audited,
    insert_decisions,
    outcome,
    plan_review,
    submit_once,
    submitted,
    tag_row,
    tally,
)

DOUBLES = cast(Table, DoubleReview.__table__)
REVIEWS = cast(Table, Review.__table__)
AI_ACTIONS = ("approve", "reject", "rename")  # decisions on a tag the AI produced (not a label a person added)
_CLAIM_ATTEMPTS = 8


def ai_tags(session: Session, *, review_id: int) -> tuple[ReviewTag, ...]:
    """The AI's tags as the first review found them (label, confidence, verdict, provider, model, prompt),
    highest confidence first; nothing of what that reviewer decided."""
    d = DECISIONS.c
    rows = session.execute(
        select(d.tag_id, d.label_before, d.confidence, d.ai_verdict, d.ai_provider, d.model, d.prompt_version_id)
        .where(d.review_id == review_id, d.action.in_(AI_ACTIONS), d.tag_id.is_not(None))
        .order_by(d.confidence.desc(), d.tag_id)).all()
    # The recorded state shown is the verdict: what the tag's state was before anyone reviewed it.
    return tuple(ReviewTag(tag_id=int(r.tag_id), label=r.label_before, confidence=float(r.confidence or 0.0),
                           state=r.ai_verdict or "needs_review", verdict=r.ai_verdict or "needs_review",
                           provider=r.ai_provider, model=r.model, prompt_version_id=r.prompt_version_id)
                 for r in rows)


def _item(s: Session, *, photo_id: int, me: int) -> ReviewItem:
    claim = s.execute(select(CLAIMS).where(CLAIMS.c.photo_id == photo_id, CLAIMS.c.reviewer_id == me)).one()
    photo = s.execute(select(PHOTOS).where(PHOTOS.c.id == photo_id)).one()
    first = s.execute(select(DOUBLES.c.first_review_id).where(DOUBLES.c.photo_id == photo_id)).scalar_one()
    return ReviewItem(token=claim.token, photo_id=photo_id, filename=photo.filename, storage_uri=photo.storage_uri,
                      width=photo.width, height=photo.height, created_at=photo.created_at,
                      queue_order=claim.queue_order, claimed_at=claim.claimed_at, expires_at=claim.expires_at,
                      tags=ai_tags(s, review_id=int(first)))


def _waiting(org: int, me: int, now: datetime, passed: Sequence[int]) -> Any:
    """Waiting double reviews `me` may take, oldest routing first: not their own first review, not held by
    another reviewer's live claim."""
    dr, r, c = DOUBLES.c, REVIEWS.c, CLAIMS.c
    held = exists(select(c.id).where(c.photo_id == dr.photo_id, c.expires_at > now, c.reviewer_id != me))
    return (select(dr.photo_id).join(REVIEWS, r.id == dr.first_review_id)
            .where(dr.organization_id == org, dr.status == "waiting",
                   or_(r.reviewer_id.is_(None), r.reviewer_id != me), ~held,
                   dr.photo_id.not_in([int(i) for i in passed] or [0]))
            .order_by(dr.created_at, dr.id))


def waiting_count(actor: Actor, *, settings: Settings | None = None) -> int:
    """How many routed photos the acting user could take for a second review now (quality.view)."""
    actor.require("quality.view")
    with org_session(actor.organization_id, settings=settings) as s:
        query = _waiting(actor.organization_id, actor.user_id or 0, utcnow(), ()).subquery()
        return int(s.scalar(select(func.count()).select_from(query)) or 0)


def claim_second(actor: Actor, *, claim_seconds: int = DEFAULT_CLAIM_SECONDS, now: datetime | None = None,
                 settings: Settings | None = None) -> ReviewItem | None:
    """Claim the next photo waiting for a second review (my live second-review claim first), shown blind;
    None when there is none the acting reviewer may take."""
    actor.require("review.tags")
    me, now, org = reviewer_id(actor), now or utcnow(), actor.organization_id
    if not 1 <= claim_seconds <= MAX_CLAIM_SECONDS:
        raise ValidationFailed(f"A claim of {claim_seconds} s is not allowed.",
                               hint=f"Claims last between 1 s and {MAX_CLAIM_SECONDS // 3600} hours.")
    expires = now + timedelta(seconds=claim_seconds)
    with write_session(org, settings) as s:
        s.execute(delete(CLAIMS).where(CLAIMS.c.reviewer_id == me, CLAIMS.c.expires_at <= now))
    with write_session(org, settings) as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        passed: list[int] = []
        mine = s.scalar(select(CLAIMS.c.photo_id).join(DOUBLES, DOUBLES.c.photo_id == CLAIMS.c.photo_id).where(
            CLAIMS.c.reviewer_id == me, CLAIMS.c.expires_at > now, CLAIMS.c.queue_order == SECOND_REVIEW,
            DOUBLES.c.status == "waiting"))
        if mine is not None:
            return _item(s, photo_id=int(mine), me=me)
        for _ in range(_CLAIM_ATTEMPTS):
            photo_id = s.scalar(_waiting(org, me, now, passed).limit(1))
            if photo_id is None:
                return None
            # The photo first, as claim_next and a submit lock it: skipped, not waited on, when held.
            if postgres and s.scalar(select(PHOTOS.c.id).where(PHOTOS.c.id == photo_id).with_for_update(
                    skip_locked=True, key_share=True)) is None:
                passed.append(int(photo_id))
                continue
            if take_claim(s, org=org, me=me, photo_id=int(photo_id), order=SECOND_REVIEW, now=now, expires=expires):
                return _item(s, photo_id=int(photo_id), me=me)
            passed.append(int(photo_id))
    return None


def submit_second_review(actor: Actor, *, token: str, decisions: Sequence[TagDecision], added: Sequence[str] = (),
                         now: datetime | None = None, settings: Settings | None = None) -> ReviewOutcome:
    """Record the second review held under claim `token` (see the module): no tag or ground truth changes;
    `ground_truth` in the answer is the photo's, as the first review left it."""
    actor.require("review.tags")
    me, now = reviewer_id(actor), now or utcnow()
    return submit_once(actor, token=token, settings=settings, write=lambda s: _submit(
        s, actor, me=me, token=token, decisions=decisions, added=added, now=now))


def _submit(s: Session, actor: Actor, *, me: int, token: str, decisions: Sequence[TagDecision],
            added: Sequence[str], now: datetime) -> ReviewOutcome:
    org = actor.organization_id
    claim = held_claim(s, token=token, org=org, lock=True)
    if claim is None or claim.reviewer_id != me or claim.queue_order != SECOND_REVIEW:
        previous = submitted(s, token=token, reviewer_id=me)
        if previous is not None:
            return previous
        raise ConflictError("This photo is no longer yours to review a second time: your claim ended.",
                            hint="Take the next photo for a second review; these decisions were not saved.")
    double = s.execute(select(DoubleReview).where(DoubleReview.photo_id == claim.photo_id)
                       .with_for_update()).scalar_one_or_none()
    if double is None or double.status != "waiting":
        s.execute(delete(CLAIMS).where(CLAIMS.c.id == claim.id))
        raise ConflictError(f"Photo #{claim.photo_id} no longer waits for a second review.",
                            hint="Take the next photo for a second review.")
    first = s.get(Review, double.first_review_id)
    if first is not None and first.reviewer_id == me:
        raise ConflictError("You reviewed this photo first; a second review must be someone else's.",
                            hint="Take the next photo for a second review.")
    tags = ai_tags(s, review_id=double.first_review_id)
    plan = plan_review(decisions, tags, added)
    review = Review(organization_id=org, photo_id=claim.photo_id, reviewer_id=me, claim_token=token,
                    queue_order=SECOND_REVIEW, claimed_at=claim.claimed_at, submitted_at=now)
    s.add(review)
    s.flush()
    # An added label is a decision only: no tag is created (the photo's tags stay the first review's).
    rows = [tag_row(plan, t) for t in tags] + [added_row(label, None) for label in plan.additions]
    insert_decisions(s, rows, org=org, review_id=review.id, photo_id=claim.photo_id, reviewer_id=me, now=now)
    double.second_review_id, double.status = review.id, "reviewed"
    s.execute(delete(CLAIMS).where(CLAIMS.c.id == claim.id))
    audit.record(s, actor=actor, action="review.second_submit", entity_type="photo", entity_id=claim.photo_id,
                 before={"double_review": "waiting"}, after={"double_review": "reviewed", "decisions": audited(rows)},
                 summary=f"Second review of photo #{claim.photo_id}: {tally(rows)[1]}")
    return outcome(s, review, recorded=True)
