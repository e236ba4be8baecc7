"""Which reviewed photos go to a second reviewer: the organization's share (a versioned, audited setting) and
the deterministic draw that routes a photo when its first review is submitted.

The draw is a hash of the organization and the photo id mapped to [0, 1): a photo is routed when it falls
below the share, so the same photo always draws the same way (a resubmit after an undo routes it again
exactly when it was routed before), and over many photos the routed fraction approaches the share. Routing is
`route`'s, called by `decisions._submit` in the review's own transaction; a second review is never routed.
Claiming and submitting second reviews is `second_review.py`'s; agreement figures are `agreement.py`'s.

The share is a key of the quality settings row (`quality_settings.py`: its write, audit and Revert).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import DoubleReview
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.settings import Settings
from aiconsole.quality import quality_settings as quality_settings_row
from aiconsole.quality.quality_settings import SETTINGS_ENTITY, SHARE

__all__ = ["SECOND_REVIEW", "SETTINGS_ENTITY", "SHARE", "QualitySettingsView", "draw", "quality_settings", "route",
           "routed", "set_double_review_share"]

SECOND_REVIEW = "second_review"  # the queue order of a second review (reviews.queue_order, review_claims)
_DRAW_SPACE = 2**64


@dataclass(frozen=True)
class QualitySettingsView:
    """The organization's quality settings as read: version 0 means never saved (the defaults)."""

    double_review_share: float
    version: int
    updated_by: str | None
    updated_at: datetime | None


def draw(organization_id: int, photo_id: int) -> float:
    """The photo's routing draw in [0, 1), the same on every call (SHA-256 of the organization and photo)."""
    digest = hashlib.sha256(f"double-review:{organization_id}:{photo_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _DRAW_SPACE


def routed(organization_id: int, photo_id: int, share: float) -> bool:
    """Whether a photo goes to a second reviewer at this share (share 1 routes all, 0 none)."""
    return draw(organization_id, photo_id) < share


def route(session: Session, *, review: Any, now: datetime) -> bool:
    """After a first review is recorded (same transaction): put its photo in double review when the draw
    falls below the share and it is not there already. True when routed. Refuses a second review's claim:
    second reviews are submitted through `second_review.submit_second_review`, which changes no tag."""
    if review.queue_order == SECOND_REVIEW:
        raise ConflictError("This claim is for a second review, which changes no tag.",
                            hint="Submit it from the Agreement tab's second review.")
    org = review.organization_id
    if not routed(org, review.photo_id, quality_settings_row.value_of(session, org, SHARE)):
        return False
    if session.scalar(select(DoubleReview.id).where(DoubleReview.photo_id == review.photo_id)) is not None:
        return False
    session.add(DoubleReview(organization_id=org, photo_id=review.photo_id, first_review_id=review.id,
                             status="waiting", created_at=now))
    session.flush()
    return True


def quality_settings(actor: Actor, *, settings: Settings | None = None) -> QualitySettingsView:
    """The organization's quality settings (quality.view)."""
    view = quality_settings_row.read(actor, key=SHARE, settings=settings)
    return QualitySettingsView(view.value, view.version, view.updated_by, view.updated_at)


def set_double_review_share(actor: Actor, *, share: float, expected_version: int,
                            now: datetime | None = None, settings: Settings | None = None) -> int:
    """Set the share of reviewed photos sent to a second reviewer (quality.configure), refused unless the
    settings are still at `expected_version` (0 when never saved); audited with before and after. Returns the
    new version. Photos already reviewed are not routed again: the share applies to reviews from now on."""
    return quality_settings_row.write(actor, key=SHARE, value=share, expected_version=expected_version, now=now,
                                      settings=settings)
