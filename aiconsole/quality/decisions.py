"""Submitting a review: every decision recorded, the photo out of needs_review, its tags in their reviewed
state and its ground truth rewritten, audited, in one transaction; a second submit of the same claim records
nothing and answers what the first one recorded.

Each tag awaiting a decision gets exactly one: approve (accepted), reject with a reason (rejected) or rename
(the tag takes the new label, state corrected). Added labels become human tags, accepted. The photo's ground
truth is then its accepted and corrected labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import load_rules, normalize_label
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import (
    REJECT_REASONS,
    GroundTruth,
    Photo,
    PhotoTag,
    Review,
    ReviewClaim,
    ReviewDecision,
)
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import double_review
from aiconsole.quality.review_queue import ReviewTag, held_claim, review_tags, reviewer_id, write_session

DECISIONS = cast(Table, ReviewDecision.__table__)
TAGS = cast(Table, PhotoTag.__table__)
TRUTH = cast(Table, GroundTruth.__table__)
TAG_ACTIONS = ("approve", "reject", "rename")
STATE_AFTER = {"approve": "accepted", "reject": "rejected", "rename": "corrected"}
MAX_LABEL = 200
MAX_NOTE = 500
HUMAN_CONFIDENCE = 1.0


@dataclass(frozen=True)
class TagDecision:
    """The reviewer's decision on one tag: approve, reject (with a reason) or rename (to `label`)."""

    tag_id: int
    action: str
    reason: str | None = None
    label: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ReviewOutcome:
    """What a submitted review recorded; `recorded` is False for a repeated submit (nothing new written)."""

    review_id: int
    photo_id: int
    recorded: bool
    approved: int
    rejected: int
    renamed: int
    added: int
    ground_truth: tuple[str, ...]


def _label(raw: str | None, what: str) -> str:
    label = normalize_label(raw or "")
    if not label:
        raise ValidationFailed(f"The {what} label is empty.", hint="Type the label the photo should have.")
    if len(label) > MAX_LABEL:
        raise ValidationFailed(f"The {what} label is longer than {MAX_LABEL} characters.",
                               hint="Use a short label, e.g. 'golden retriever'.")
    return label


def _checked(decisions: Sequence[TagDecision], tags: Sequence[ReviewTag]) -> dict[int, TagDecision]:
    """The decisions by tag id, each valid, exactly one for every tag awaiting one."""
    by_tag: dict[int, TagDecision] = {}
    labels = {t.tag_id: t.label for t in tags}
    for d in decisions:
        if d.tag_id not in labels:
            raise ValidationFailed(f"Tag #{d.tag_id} is not awaiting a decision on this photo.",
                                   hint="Reload the photo: its tags may have been reviewed already.")
        if d.tag_id in by_tag:
            raise ValidationFailed(f"The tag '{labels[d.tag_id]}' has two decisions.", hint="Keep one of them.")
        if d.action not in TAG_ACTIONS:
            raise ValidationFailed(f"'{d.action}' is not a decision on a tag.",
                                   hint=f"Use one of: {', '.join(TAG_ACTIONS)}.")
        if d.action == "reject" and d.reason not in REJECT_REASONS:
            raise ValidationFailed(f"Rejecting '{labels[d.tag_id]}' needs a reason.",
                                   hint=f"Pick one of: {', '.join(r.replace('_', ' ') for r in REJECT_REASONS)}.")
        if d.action != "reject" and d.reason is not None:
            raise ValidationFailed(f"Only a rejection has a reason ('{labels[d.tag_id]}' is {d.action}d).")
        if d.action == "rename" and _label(d.label, "new") == labels[d.tag_id]:
            raise ValidationFailed(f"Renaming '{labels[d.tag_id]}' to the same label changes nothing.",
                                   hint="Approve it instead, or type a different label.")
        if d.note is not None and len(d.note) > MAX_NOTE:
            raise ValidationFailed(f"The note is longer than {MAX_NOTE} characters.")
        by_tag[d.tag_id] = d
    missing = [t.label for t in tags if t.tag_id not in by_tag]
    if missing:
        raise ValidationFailed(f"Decide on every tag before submitting: {', '.join(missing)} still undecided.",
                               hint="Approve, reject or rename each one (approve all does the rest).")
    return by_tag


def _outcome(session: Session, review: Any, *, recorded: bool) -> ReviewOutcome:
    actions = Counter(session.scalars(select(DECISIONS.c.action).where(DECISIONS.c.review_id == review.id)))
    truth = session.scalars(select(TRUTH.c.label).where(TRUTH.c.photo_id == review.photo_id)
                            .order_by(TRUTH.c.label))
    return ReviewOutcome(review_id=review.id, photo_id=review.photo_id, recorded=recorded,
                         approved=actions["approve"], rejected=actions["reject"], renamed=actions["rename"],
                         added=actions["add"], ground_truth=tuple(truth))


def _previous(actor: Actor, token: str, settings: Settings | None) -> ReviewOutcome | None:
    """What the review submitted under `token` recorded, if one was."""
    with org_session(actor.organization_id, settings=settings) as s:
        review = s.execute(select(Review).where(Review.claim_token == token)).scalar_one_or_none()
        return None if review is None else _outcome(s, review, recorded=False)


def submit_review(actor: Actor, *, token: str, decisions: Sequence[TagDecision], added: Sequence[str] = (),
                  now: datetime | None = None, settings: Settings | None = None) -> ReviewOutcome:
    """Record the review of the photo held under claim `token`, in one transaction (see the module)."""
    actor.require("review.tags")
    me, now = reviewer_id(actor), now or utcnow()
    try:
        with write_session(actor.organization_id, settings) as s:
            return _submit(s, actor, me=me, token=token, decisions=decisions, added=added, now=now)
    except IntegrityError:
        # Two submits of one claim at once: the unique claim token let one through; answer what it recorded.
        previous = _previous(actor, token, settings)
        if previous is None:
            raise
        return previous


def _submit(s: Session, actor: Actor, *, me: int, token: str, decisions: Sequence[TagDecision],
            added: Sequence[str], now: datetime) -> ReviewOutcome:
    org = actor.organization_id
    claim = held_claim(s, token=token, org=org, lock=True)
    if claim is None or claim.reviewer_id != me:
        # Read after the lock: a submit that held it first has committed its review by now.
        review = s.execute(select(Review).where(Review.claim_token == token)).scalar_one_or_none()
        if review is not None and review.reviewer_id == me:
            return _outcome(s, review, recorded=False)
        raise ConflictError("This photo is no longer yours to review: your claim ended and the photo went back "
                            "to the queue or to another reviewer.",
                            hint="Take the next photo; the decisions on this one were not saved.")
    rules = load_rules(s, org)
    tags = review_tags(s, photo_id=claim.photo_id, rules=rules)
    if not tags and not added:
        raise ConflictError(f"Photo #{claim.photo_id} has no tag waiting for a decision any more: it was reviewed "
                            "meanwhile.", hint="Take the next photo.")
    by_tag = _checked(decisions, tags)
    final = {t.tag_id: (_label(by_tag[t.tag_id].label, "new") if by_tag[t.tag_id].action == "rename" else t.label)
             for t in tags}
    additions = list(dict.fromkeys(_label(a, "added") for a in added))
    kept = {final[t.tag_id] for t in tags if by_tag[t.tag_id].action != "reject"}
    doubled = [a for a in additions if a in kept]
    if doubled:
        raise ValidationFailed(f"The photo already has {', '.join(doubled)}; adding it again changes nothing.")
    photo = s.get(Photo, claim.photo_id)
    assert photo is not None  # the claim's foreign key cascades with the photo
    review = Review(organization_id=org, photo_id=photo.id, reviewer_id=me, claim_token=token,
                    queue_order=claim.queue_order, claimed_at=claim.claimed_at, submitted_at=now)
    s.add(review)
    s.flush()
    double_review.route(s, review=review, now=now)
    rows = []
    for t in tags:
        d = by_tag[t.tag_id]
        s.execute(update(TAGS).where(TAGS.c.id == t.tag_id).values(
            label=final[t.tag_id], review_state=STATE_AFTER[d.action], reviewed_by=me, reviewed_at=now))
        rows.append({"tag_id": t.tag_id, "action": d.action, "reason": d.reason, "note": d.note,
                     "label_before": t.label, "label_after": None if d.action == "reject" else final[t.tag_id],
                     "confidence": t.confidence, "ai_verdict": t.verdict, "ai_provider": t.provider,
                     "model": t.model, "prompt_version_id": t.prompt_version_id})
    for label in additions:
        tag_id = s.execute(insert(TAGS).values(
            organization_id=org, photo_id=photo.id, result_id=None, label=label, confidence=HUMAN_CONFIDENCE,
            source="human", review_state="accepted", reviewed_by=me, reviewed_at=now, created_at=now,
        ).returning(TAGS.c.id)).scalar_one()
        rows.append({"tag_id": tag_id, "action": "add", "reason": None, "note": None, "label_before": None,
                     "label_after": label, "confidence": None, "ai_verdict": None, "ai_provider": None,
                     "model": None, "prompt_version_id": None})
    if rows:
        s.execute(insert(DECISIONS), [{**r, "organization_id": org, "review_id": review.id, "photo_id": photo.id,
                                       "reviewer_id": me, "created_at": now} for r in rows])
    truth = rewrite_ground_truth(s, org=org, photo_ids=[photo.id], source="review", review_id=review.id,
                                 set_by=me, now=now)[photo.id]
    status_before = photo.status
    if photo.status == "needs_review":
        photo.status = "completed"
    photo.updated_at = now
    s.execute(delete(ReviewClaim).where(ReviewClaim.id == claim.id))
    counts = Counter(r["action"] for r in rows)
    summary = (f"Reviewed photo #{photo.id}: {counts['approve']} approved, {counts['reject']} rejected, "
               f"{counts['rename']} renamed, {counts['add']} added")
    audit.record(s, actor=actor, action="review.submit", entity_type="photo", entity_id=photo.id,
                 before={"status": status_before, "tags": {t.label: t.state for t in tags}},
                 after={"status": photo.status, "decisions": [{k: r[k] for k in ("action", "label_before",
                                                                                  "label_after", "reason")}
                                                              for r in rows],
                        "ground_truth": list(truth)},
                 summary=summary)
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
