"""What a submitted review records, the one owner for both kinds: the first review (`decisions`) and the blind
second review (`second_review`). Validating the reviewer's decisions, the labels they lead to, the
review_decisions rows, the audit summary, and the answer a submit gives (the same answer again for a repeated
submit of one claim)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import normalize_label
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import REJECT_REASONS, GroundTruth, Review, ReviewDecision
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality.review_queue import ReviewTag, write_session

DECISIONS = cast(Table, ReviewDecision.__table__)
TRUTH = cast(Table, GroundTruth.__table__)
TAG_ACTIONS = ("approve", "reject", "rename")
MAX_LABEL = 200
MAX_NOTE = 500
_AUDITED = ("action", "label_before", "label_after", "reason")


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


@dataclass(frozen=True)
class ReviewPlan:
    """Valid decisions on every tag awaiting one: each tag's decision and final label, and the labels added."""

    by_tag: dict[int, TagDecision]
    final: dict[int, str]
    additions: list[str]


def checked_label(raw: object, what: str = "") -> str:
    """The normalized label, refused when empty or too long (`what` names it in the message: new, added...)."""
    label, name = normalize_label(str(raw or "")), f"{what} label".strip()
    if not label:
        raise ValidationFailed(f"The {name} is empty.", hint="Type the label, e.g. 'golden retriever'.")
    if len(label) > MAX_LABEL:
        raise ValidationFailed(f"The {name} is longer than {MAX_LABEL} characters.",
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
        if d.action == "rename" and checked_label(d.label, "new") == labels[d.tag_id]:
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


def plan_review(decisions: Sequence[TagDecision], tags: Sequence[ReviewTag], added: Sequence[str]) -> ReviewPlan:
    """Check the decisions and added labels against the tags awaiting a decision (ValidationFailed says why)."""
    by_tag = _checked(decisions, tags)
    final = {t.tag_id: (checked_label(by_tag[t.tag_id].label, "new") if by_tag[t.tag_id].action == "rename"
                        else t.label) for t in tags}
    additions = list(dict.fromkeys(checked_label(a, "added") for a in added))
    kept = {final[t.tag_id] for t in tags if by_tag[t.tag_id].action != "reject"}
    doubled = [a for a in additions if a in kept]
    if doubled:
        raise ValidationFailed(f"The photo already has {', '.join(doubled)}; adding it again changes nothing.")
    return ReviewPlan(by_tag=by_tag, final=final, additions=additions)


def tag_row(plan: ReviewPlan, tag: ReviewTag) -> dict[str, Any]:
    """The decision row on one of the AI's tags (what it was, what the reviewer made of it)."""
    d = plan.by_tag[tag.tag_id]
    return {"tag_id": tag.tag_id, "action": d.action, "reason": d.reason, "note": d.note,
            "label_before": tag.label, "label_after": None if d.action == "reject" else plan.final[tag.tag_id],
            "confidence": tag.confidence, "ai_verdict": tag.verdict, "ai_provider": tag.provider,
            "model": tag.model, "prompt_version_id": tag.prompt_version_id}


def added_row(label: str, tag_id: int | None) -> dict[str, Any]:
    """The decision row of a label the reviewer added (`tag_id` None when no tag is created for it)."""
    return {"tag_id": tag_id, "action": "add", "reason": None, "note": None, "label_before": None,
            "label_after": label, "confidence": None, "ai_verdict": None, "ai_provider": None, "model": None,
            "prompt_version_id": None}


def insert_decisions(s: Session, rows: Sequence[dict[str, Any]], *, org: int, review_id: int, photo_id: int,
                     reviewer_id: int, now: datetime) -> None:
    """Write the review's decision rows."""
    if rows:
        s.execute(insert(DECISIONS), [{**r, "organization_id": org, "review_id": review_id, "photo_id": photo_id,
                                       "reviewer_id": reviewer_id, "created_at": now} for r in rows])


def tally(rows: Sequence[dict[str, Any]]) -> tuple[Counter[str], str]:
    """The decisions counted by action, and their audit summary: '2 approved, 1 rejected, 0 renamed, 0 added'."""
    counts = Counter(r["action"] for r in rows)
    return counts, (f"{counts['approve']} approved, {counts['reject']} rejected, {counts['rename']} renamed, "
                    f"{counts['add']} added")


def audited(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The decisions as the audit log keeps them."""
    return [{k: r[k] for k in _AUDITED} for r in rows]


def outcome(session: Session, review: Any, *, recorded: bool) -> ReviewOutcome:
    """What `review` recorded, read back: its decisions by action and the photo's ground truth now."""
    actions = Counter(session.scalars(select(DECISIONS.c.action).where(DECISIONS.c.review_id == review.id)))
    truth = session.scalars(select(TRUTH.c.label).where(TRUTH.c.photo_id == review.photo_id)
                            .order_by(TRUTH.c.label))
    return ReviewOutcome(review_id=review.id, photo_id=review.photo_id, recorded=recorded,
                         approved=actions["approve"], rejected=actions["reject"], renamed=actions["rename"],
                         added=actions["add"], ground_truth=tuple(truth))


def submitted(s: Session, *, token: str, reviewer_id: int) -> ReviewOutcome | None:
    """The answer to a repeated submit: what this reviewer's review under `token` recorded, if there is one.
    Read after the claim's lock, so a submit that held it first has committed its review by now."""
    review = s.execute(select(Review).where(Review.claim_token == token)).scalar_one_or_none()
    if review is not None and review.reviewer_id == reviewer_id:
        return outcome(s, review, recorded=False)
    return None


def submit_once(actor: Actor, *, token: str, settings: Settings | None,
                write: Callable[[Session], ReviewOutcome]) -> ReviewOutcome:
    """Run `write` in one write transaction; when two submits of one claim race, the unique claim token lets
    one through and the other answers what it recorded."""
    try:
        with write_session(actor.organization_id, settings) as s:
            return write(s)
    except IntegrityError:
        with org_session(actor.organization_id, settings=settings) as s:
            review = s.execute(select(Review).where(Review.claim_token == token)).scalar_one_or_none()
            if review is None:
                raise
            return outcome(s, review, recorded=False)
