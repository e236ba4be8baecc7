"""Undoing a submitted review: its tags back to the state and label they had before it, the tags it added
gone, the photo's status and ground truth as they were without it, the review and its decisions removed, and
the photo back in the queue held by the reviewer who undid it, so they can decide again. Audited, in one
transaction.

Only the reviewer who submitted it can undo a review, and only while nothing changed it since: a newer review
of the photo, or a tag it decided that someone changed afterwards (a batch correction), refuses the undo and
changes nothing. The state each tag had before the review is read from the review's own audit entry (its
`before`), which `decisions.submit_review` writes in the same transaction as the review.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import (
    TAG_REVIEW_STATES,
    AuditLog,
    Photo,
    PhotoTag,
    Review,
    ReviewClaim,
    ReviewDecision,
)
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied
from aiconsole.platform.settings import Settings
from aiconsole.quality.decisions import STATE_AFTER, rewrite_ground_truth
from aiconsole.quality.review_queue import DEFAULT_CLAIM_SECONDS, reviewer_id, write_session

SUBMIT_ACTION, UNDO_ACTION = "review.submit", "review.undo"


@dataclass(frozen=True)
class UndoOutcome:
    """What an undo restored: the photo (now claimed by the reviewer again, when `reclaimed`), how many tags
    went back to their earlier state, how many added tags were removed, and the ground truth it left."""

    review_id: int
    photo_id: int
    restored: int
    removed: int
    reclaimed: bool
    ground_truth: tuple[str, ...]


def _submit_entry(s: Session, review: Review, decisions: list[Any]) -> Any:
    """The audit entry `submit_review` wrote with this review: the newest submit of the photo by its reviewer
    whose decisions are this review's, in order (a review written without one has none to restore from)."""
    entry = s.execute(select(AuditLog.before, AuditLog.after).where(
        AuditLog.organization_id == review.organization_id, AuditLog.action == SUBMIT_ACTION,
        AuditLog.entity_type == "photo", AuditLog.entity_id == str(review.photo_id),
        AuditLog.user_id == review.reviewer_id).order_by(AuditLog.id.desc()).limit(1)).first()
    mine = [{"action": d.action, "label_before": d.label_before, "label_after": d.label_after, "reason": d.reason}
            for d in decisions]
    if entry is None or (entry.after or {}).get("decisions") != mine:
        raise ConflictError(f"Review #{review.id} has no record of the tags' states before it, so it cannot be "
                            "undone here.", hint="Correct the photo's tags with a new review or a batch correction.")
    return entry


def _changed_since(s: Session, review: Review, decisions: list[Any]) -> list[str]:
    """The labels of tags this review decided that are no longer as it left them."""
    tags = {t.id: t for t in s.scalars(select(PhotoTag).where(
        PhotoTag.id.in_([d.tag_id for d in decisions if d.tag_id is not None])))}
    changed = []
    for d in decisions:
        tag = tags.get(d.tag_id) if d.tag_id is not None else None
        state = "accepted" if d.action == "add" else STATE_AFTER[d.action]
        label = d.label_before if d.action == "reject" else d.label_after
        if (tag is None or tag.reviewed_by != review.reviewer_id or tag.reviewed_at != review.submitted_at
                or tag.review_state != state or tag.label != label):
            changed.append(str(d.label_after or d.label_before))
    return changed


def _reclaim(s: Session, *, org: int, photo_id: int, queue_order: str, me: int, now: datetime) -> bool:
    """Give the photo back to `me` as their one claim (the queue's rule: the claim they held on another photo
    ends), unless someone else holds it live."""
    c = ReviewClaim
    other = s.scalar(select(c.id).where(c.photo_id == photo_id, c.reviewer_id != me, c.expires_at > now))
    if other is not None:
        return False
    s.execute(delete(c).where((c.reviewer_id == me) | (c.photo_id == photo_id)))
    s.add(ReviewClaim(organization_id=org, photo_id=photo_id, reviewer_id=me, token=str(uuid.uuid4()),
                      queue_order=queue_order, claimed_at=now,
                      expires_at=now + timedelta(seconds=DEFAULT_CLAIM_SECONDS)))
    return True


def undo_last_review(actor: Actor, *, review_id: int, now: datetime | None = None,
                     settings: Settings | None = None) -> UndoOutcome:
    """Undo review `review_id` (see the module): the acting reviewer's own, the newest of its photo, unchanged
    since. Raises NotFound, PermissionDenied or ConflictError (nothing changed) otherwise."""
    actor.require("review.tags")
    me, now = reviewer_id(actor), now or utcnow()
    org = actor.organization_id
    with write_session(org, settings) as s:
        review = s.scalar(select(Review).where(Review.organization_id == org, Review.id == review_id))
        if review is None:
            raise NotFound(f"Review #{review_id} is not in this organization: it may have been undone already.",
                           hint="Reload the page.")
        if review.reviewer_id != me:
            raise PermissionDenied(f"Review #{review_id} was made by another reviewer; only they can undo it.",
                                   hint="Correct the photo's tags with a new review instead.")
        newer = s.scalar(select(Review.id).where(Review.photo_id == review.photo_id, Review.id > review.id))
        if newer is not None:
            raise ConflictError(f"Photo #{review.photo_id} was reviewed again after review #{review_id} "
                                f"(review #{newer}); undoing the older one would lose that.",
                                hint="Correct the photo's tags with a new review instead.")
        queue_order = review.queue_order
        decisions = list(s.scalars(select(ReviewDecision).where(ReviewDecision.review_id == review.id)
                                   .order_by(ReviewDecision.id)))
        entry = _submit_entry(s, review, decisions)
        changed = _changed_since(s, review, decisions)
        if changed:
            raise ConflictError(f"Tags changed since the review: {', '.join(changed)}; undoing it would overwrite "
                                "that.", hint="Correct the photo's tags with a new review instead.")
        states_before: dict[str, str] = dict((entry.before or {}).get("tags") or {})
        photo = s.get(Photo, review.photo_id)
        assert photo is not None  # the review's foreign key cascades with the photo
        status_before = str((entry.before or {}).get("status") or photo.status)
        summary_before = {"status": photo.status, "decisions": (entry.after or {}).get("decisions"),
                          "ground_truth": (entry.after or {}).get("ground_truth")}
        added = [d.tag_id for d in decisions if d.action == "add" and d.tag_id is not None]
        restored: dict[int, tuple[str, str]] = {}
        for d in decisions:
            if d.action != "add" and d.tag_id is not None:  # a tag gone since refused the undo above
                state = states_before.get(str(d.label_before))
                if state not in TAG_REVIEW_STATES:  # a label the audit redacted: its rule verdict when decided
                    state = d.ai_verdict or "needs_review"
                restored[d.tag_id] = (str(d.label_before), str(state))
        s.execute(delete(ReviewDecision).where(ReviewDecision.review_id == review_id))
        s.execute(delete(Review).where(Review.id == review_id))
        if added:
            s.execute(delete(PhotoTag).where(PhotoTag.id.in_(added)))
        for tag_id, (label, state) in restored.items():
            s.execute(update(PhotoTag).where(PhotoTag.id == tag_id).values(
                label=label, review_state=state, reviewed_by=None, reviewed_at=None))
        previous = s.execute(select(Review.id, Review.reviewer_id).where(Review.photo_id == photo.id)
                             .order_by(Review.id.desc()).limit(1)).first()
        truth = rewrite_ground_truth(s, org=org, photo_ids=[photo.id], source="review",
                                     review_id=previous.id if previous else None,
                                     set_by=previous.reviewer_id if previous else None, now=now)[photo.id]
        if photo.status == "completed" and status_before == "needs_review":
            photo.status = "needs_review"
        photo.updated_at = now
        reclaimed = _reclaim(s, org=org, photo_id=photo.id, queue_order=queue_order, me=me, now=now)
        audit.record(s, actor=actor, action=UNDO_ACTION, entity_type="photo", entity_id=photo.id,
                     before=summary_before,
                     after={"status": photo.status, "review_id": review_id, "ground_truth": list(truth),
                            "tags": {label: state for label, state in restored.values()}, "removed": len(added)},
                     summary=f"Undid review #{review_id} of photo #{photo.id}: "
                             f"{fmt.plural(len(restored), 'tag')} back to their earlier state, "
                             f"{fmt.plural(len(added), 'added tag')} removed; the photo is back in the queue")
        return UndoOutcome(review_id=review_id, photo_id=photo.id, restored=len(restored), removed=len(added),
                           reclaimed=reclaimed, ground_truth=truth)
