"""Submitting a review: every decision recorded, the photo out of needs_review, its tags in their reviewed
state and its ground truth rewritten, audited, in one transaction; a second submit of the same claim records
nothing and answers what the first one recorded.

Each tag awaiting a decision gets exactly one: approve (accepted), reject with a reason (rejected) or rename
(the tag takes the new label, state corrected). Added labels become human tags, accepted. The photo's ground
truth is then its accepted and corrected labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import load_rules
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import REJECT_REASONS, Photo, PhotoTag, Review, ReviewClaim
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.settings import Settings
from aiconsole.quality import double_review
from aiconsole.quality.review_queue import held_claim, review_tags, reviewer_id
from aiconsole.quality.review_record import (
    MAX_LABEL,
    TRUTH,
    ReviewOutcome,
    TagDecision,
    added_row,
    audited,
    insert_decisions,
    plan_review,
    submit_once,
    submitted,
    tag_row,
    tally,
)

__all__ = ["HUMAN_CONFIDENCE", "MAX_LABEL", "REJECT_REASONS", "STATE_AFTER", "ReviewOutcome", "TagDecision",
           "rewrite_ground_truth", "submit_review"]

TAGS = cast(Table, PhotoTag.__table__)
STATE_AFTER = {"approve": "accepted", "reject": "rejected", "rename": "corrected"}
HUMAN_CONFIDENCE = 1.0


def submit_review(actor: Actor, *, token: str, decisions: Sequence[TagDecision], added: Sequence[str] = (),
                  now: datetime | None = None, settings: Settings | None = None) -> ReviewOutcome:
    """Record the review of the photo held under claim `token`, in one transaction (see the module)."""
    actor.require("review.tags")
    me, now = reviewer_id(actor), now or utcnow()
    return submit_once(actor, token=token, settings=settings, write=lambda s: _submit(
        s, actor, me=me, token=token, decisions=decisions, added=added, now=now))


def _submit(s: Session, actor: Actor, *, me: int, token: str, decisions: Sequence[TagDecision],
            added: Sequence[str], now: datetime) -> ReviewOutcome:
    org = actor.organization_id
    claim = held_claim(s, token=token, org=org, lock=True)
    if claim is None or claim.reviewer_id != me:
        previous = submitted(s, token=token, reviewer_id=me)
        if previous is not None:
            return previous
        raise ConflictError("This photo is no longer yours to review: your claim ended and the photo went back "
                            "to the queue or to another reviewer.",
                            hint="Take the next photo; the decisions on this one were not saved.")
    rules = load_rules(s, org)
    tags = review_tags(s, photo_id=claim.photo_id, rules=rules)
    if not tags and not added:
        raise ConflictError(f"Photo #{claim.photo_id} has no tag waiting for a decision any more: it was reviewed "
                            "meanwhile.", hint="Take the next photo.")
    plan = plan_review(decisions, tags, added)
    photo = s.get(Photo, claim.photo_id)
    assert photo is not None  # the claim's foreign key cascades with the photo
    review = Review(organization_id=org, photo_id=photo.id, reviewer_id=me, claim_token=token,
                    queue_order=claim.queue_order, claimed_at=claim.claimed_at, submitted_at=now)
    s.add(review)
    s.flush()
    double_review.route(s, review=review, now=now)
    rows = []
    for t in tags:
        s.execute(update(TAGS).where(TAGS.c.id == t.tag_id).values(
            label=plan.final[t.tag_id], review_state=STATE_AFTER[plan.by_tag[t.tag_id].action], reviewed_by=me,
            reviewed_at=now))
        rows.append(tag_row(plan, t))
    for label in plan.additions:
        tag_id = s.execute(insert(TAGS).values(
            organization_id=org, photo_id=photo.id, result_id=None, label=label, confidence=HUMAN_CONFIDENCE,
            source="human", review_state="accepted", reviewed_by=me, reviewed_at=now, created_at=now,
        ).returning(TAGS.c.id)).scalar_one()
        rows.append(added_row(label, tag_id))
    insert_decisions(s, rows, org=org, review_id=review.id, photo_id=photo.id, reviewer_id=me, now=now)
    truth = rewrite_ground_truth(s, org=org, photo_ids=[photo.id], source="review", review_id=review.id,
                                 set_by=me, now=now)[photo.id]
    status_before = photo.status
    if photo.status == "needs_review":
        photo.status = "completed"
    photo.updated_at = now
    s.execute(delete(ReviewClaim).where(ReviewClaim.id == claim.id))
    counts, summary = tally(rows)
    audit.record(s, actor=actor, action="review.submit", entity_type="photo", entity_id=photo.id,
                 before={"status": status_before, "tags": {t.label: t.state for t in tags}},
                 after={"status": photo.status, "decisions": audited(rows), "ground_truth": list(truth)},
                 summary=f"Reviewed photo #{photo.id}: {summary}")
    return ReviewOutcome(review_id=review.id, photo_id=photo.id, recorded=True, approved=counts["approve"],
                         rejected=counts["reject"], renamed=counts["rename"], added=counts["add"],
                         ground_truth=truth)


def rewrite_ground_truth(s: Session, *, org: int, photo_ids: Sequence[int], source: str, review_id: int | None,
                         set_by: int | None, now: datetime) -> dict[int, tuple[str, ...]]:
    """Each photo's ground truth becomes its reviewed accepted and corrected labels, every row rewritten with
    this source (a review, a batch correction); returns each photo's labels sorted (() for none). The one owner
    of that rule: the review submit and batch corrections (`batches.py`, per chunk of photos) both call it."""
    t, ids = TAGS.c, sorted(set(photo_ids))
    labels: dict[int, set[str]] = {photo_id: set() for photo_id in ids}
    for photo_id, label in s.execute(select(t.photo_id, t.label).where(
            t.photo_id.in_(ids), t.reviewed_at.is_not(None), t.review_state.in_(("accepted", "corrected")))):
        labels[photo_id].add(label)
    s.execute(delete(TRUTH).where(TRUTH.c.photo_id.in_(ids)))
    rows = [{"organization_id": org, "photo_id": photo_id, "label": label, "source": source,
             "review_id": review_id, "set_by": set_by, "created_at": now}
            for photo_id in ids for label in sorted(labels[photo_id])]
    if rows:
        s.execute(insert(TRUTH), rows)
    return {photo_id: tuple(sorted(found)) for photo_id, found in labels.items()}
