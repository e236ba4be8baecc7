"""Which reviewed photos go to a second reviewer: the organization's share (a versioned, audited setting) and
the deterministic draw that routes a photo when its first review is submitted.

The draw is a hash of the organization and the photo id mapped to [0, 1): a photo is routed when it falls
below the share, so the same photo always draws the same way (a resubmit after an undo routes it again
exactly when it was routed before), and over many photos the routed fraction approaches the share. Routing is
`route`'s, called by `decisions._submit` in the review's own transaction; a second review is never routed.
Claiming and submitting second reviews is `second_review.py`'s; agreement figures are `agreement.py`'s.

A share change is revertible from the audit log: `revert_audit` (reached by admin's Revert through
`quality.public`) sets the entry's previous share again, refused when the settings changed since.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.audit import AuditRow
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import DEFAULT_DOUBLE_REVIEW_SHARE, DoubleReview, QualitySetting
from aiconsole.platform.db.sql import user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings

SECOND_REVIEW = "second_review"  # the queue order of a second review (reviews.queue_order, review_claims)
SETTINGS_ENTITY = "quality_settings"
SHARE = "double_review_share"  # the setting's key in its audit entries' before and after
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


def _share(session: Session, org: int) -> float:
    row = session.get(QualitySetting, org)
    return DEFAULT_DOUBLE_REVIEW_SHARE if row is None else float(row.double_review_share)


def route(session: Session, *, review: Any, now: datetime) -> bool:
    """After a first review is recorded (same transaction): put its photo in double review when the draw
    falls below the share and it is not there already. True when routed. Refuses a second review's claim:
    second reviews are submitted through `second_review.submit_second_review`, which changes no tag."""
    if review.queue_order == SECOND_REVIEW:
        raise ConflictError("This claim is for a second review, which changes no tag.",
                            hint="Submit it from the Agreement tab's second review.")
    org = review.organization_id
    if not routed(org, review.photo_id, _share(session, org)):
        return False
    if session.scalar(select(DoubleReview.id).where(DoubleReview.photo_id == review.photo_id)) is not None:
        return False
    session.add(DoubleReview(organization_id=org, photo_id=review.photo_id, first_review_id=review.id,
                             status="waiting", created_at=now))
    session.flush()
    return True


def quality_settings(actor: Actor, *, settings: Settings | None = None) -> QualitySettingsView:
    """The organization's quality settings (quality.view)."""
    actor.require("quality.view")
    with org_session(actor.organization_id, settings=settings) as s:
        row = s.get(QualitySetting, actor.organization_id)
        if row is None:
            return QualitySettingsView(DEFAULT_DOUBLE_REVIEW_SHARE, 0, None, None)
        return QualitySettingsView(float(row.double_review_share), row.version, user_email(s, row.updated_by),
                                   row.updated_at)


def _checked_share(share: object) -> float:
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
        raise ValidationFailed(f"The share of photos for a second review must be a number, not {share!r}.",
                               hint="Use e.g. 0.05 for 5% of reviewed photos.")
    if not 0.0 <= float(share) <= 1.0:
        raise ValidationFailed(f"A share of {share} is outside 0..1.",
                               hint="Use 0 (no second reviews) to 1 (every reviewed photo), e.g. 0.05 for 5%.")
    return float(share)


def set_double_review_share(actor: Actor, *, share: float, expected_version: int,
                            now: datetime | None = None, settings: Settings | None = None) -> int:
    """Set the share of reviewed photos sent to a second reviewer (quality.configure), refused unless the
    settings are still at `expected_version` (0 when never saved); audited with before and after. Returns the
    new version. Photos already reviewed are not routed again: the share applies to reviews from now on."""
    actor.require("quality.configure")
    value, now, org = _checked_share(share), now or utcnow(), actor.organization_id
    with org_session(org, settings=settings) as s:
        row = s.execute(select(QualitySetting).where(QualitySetting.organization_id == org)
                        .with_for_update()).scalar_one_or_none()
        version = 0 if row is None else row.version
        if version != expected_version:
            who = user_email(s, row.updated_by) if row is not None else None
            raise ConflictError(f"The quality settings changed since you opened them (now version {version}"
                                f"{', by ' + who if who else ''}); nothing was saved.",
                                hint="Reload to see the current share, then change it again.")
        before = {"double_review_share": _share(s, org), "version": version}
        if row is None:
            row = QualitySetting(organization_id=org, double_review_share=value, version=1)
            s.add(row)
        else:
            row.double_review_share, row.version = value, version + 1
        row.updated_by, row.updated_at = actor.user_id, now
        s.flush()
        audit.record(s, actor=actor, action="quality.settings", entity_type=SETTINGS_ENTITY, entity_id=org,
                     before=before, after={"double_review_share": value, "version": row.version},
                     summary=f"Second-review share {before['double_review_share']:.2%} -> {value:.2%}",
                     reversible=True)
        return row.version


def revert_audit(session: Session, *, actor: Actor, entry: AuditRow) -> int:
    """Set the share entry `entry` changed back to its value before, in the caller's transaction (the audit
    log's Revert), refused unless the settings are still at the version it left; returns the revert's entry."""
    actor.require("quality.configure")
    org = actor.organization_id
    if entry.organization_id != org or entry.entity_type != SETTINGS_ENTITY:
        raise NotFound(f"Audit entry #{entry.id} is not a quality setting of this organization.",
                       hint="Reload the audit log and pick an entry from the list.")
    before, after = entry.before or {}, entry.after or {}
    if set(after) != {SHARE, "version"} or SHARE not in before:
        raise ValidationFailed(f"Audit entry #{entry.id} ({entry.action}) does not change the second-review share, "
                               "so it cannot be reverted here.", hint="Change that setting by hand where it is set.")
    row = session.execute(select(QualitySetting).where(QualitySetting.organization_id == org)
                          .with_for_update()).scalar_one_or_none()
    version = 0 if row is None else row.version
    if row is None or version != after["version"]:
        who = user_email(session, row.updated_by) if row is not None else None
        raise ConflictError(f"The quality settings changed since entry #{entry.id} (it left version "
                            f"{after['version']}, now version {version}{', by ' + who if who else ''}); nothing was "
                            "reverted.", hint="Revert the later change first, or set the share on the Agreement tab.")
    current, value = float(row.double_review_share), _checked_share(before[SHARE])
    row.double_review_share, row.version = value, version + 1
    row.updated_by, row.updated_at = actor.user_id, utcnow()
    session.flush()
    return audit.record(session, actor=actor, action="revert", entity_type=SETTINGS_ENTITY, entity_id=org,
                        before={SHARE: current, "version": version}, after={SHARE: value, "version": row.version},
                        summary=f"Reverted #{entry.id}: second-review share {current:.2%} -> {value:.2%}",
                        reversible=True)
