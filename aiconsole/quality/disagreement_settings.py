"""The disagreement threshold: a photo whose two sources' label sets have a Jaccard similarity below it is a
disagreement (the queue's disagreement order, the Quality page's list). Per organization, on its
quality_settings row (the row double_review's share lives on, one version for both): validated, version-checked,
audited with before and after (quality.configure). No row means the default, DEFAULT_DISAGREEMENT_THRESHOLD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import DEFAULT_DISAGREEMENT_THRESHOLD, QualitySetting
from aiconsole.platform.db.sql import user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, ValidationFailed
from aiconsole.platform.settings import Settings

SETTINGS_ENTITY = "quality_settings"  # the audit entity double_review's share is recorded under, too


@dataclass(frozen=True)
class ThresholdView:
    """The threshold as read, with the settings' version (0: never saved) and who changed them last."""

    threshold: float
    version: int
    updated_by: str | None
    updated_at: datetime | None


def threshold_of(session: Session, org: int) -> float:
    """The organization's threshold in an open session."""
    row = session.get(QualitySetting, org)
    return DEFAULT_DISAGREEMENT_THRESHOLD if row is None else float(row.disagreement_threshold)


def disagreement_threshold(actor: Actor, *, settings: Settings | None = None) -> ThresholdView:
    """The acting organization's disagreement threshold (quality.view)."""
    actor.require("quality.view")
    with org_session(actor.organization_id, settings=settings) as s:
        row = s.get(QualitySetting, actor.organization_id)
        if row is None:
            return ThresholdView(DEFAULT_DISAGREEMENT_THRESHOLD, 0, None, None)
        return ThresholdView(float(row.disagreement_threshold), row.version, user_email(s, row.updated_by),
                             row.updated_at)


def checked_threshold(value: object) -> float:
    """`value` as a threshold in 0..1, else ValidationFailed saying what to enter."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed(f"The disagreement threshold must be a number, not {value!r}.",
                               hint="Use a Jaccard similarity between 0 and 1, e.g. 0.5.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValidationFailed(f"A disagreement threshold of {value} is outside 0..1.",
                               hint="Jaccard similarity runs from 0 (no label in common) to 1 (the same labels); "
                                    "e.g. 0.5.")
    return float(value)


def set_disagreement_threshold(actor: Actor, *, threshold: float, expected_version: int,
                               now: datetime | None = None, settings: Settings | None = None) -> int:
    """Set the threshold (quality.configure), refused unless the quality settings are still at
    `expected_version` (0 when never saved); audited with before and after. Returns the new version."""
    actor.require("quality.configure")
    value, now, org = checked_threshold(threshold), now or utcnow(), actor.organization_id
    with org_session(org, settings=settings) as s:
        row = s.execute(select(QualitySetting).where(QualitySetting.organization_id == org)
                        .with_for_update()).scalar_one_or_none()
        version = 0 if row is None else row.version
        if version != expected_version:
            who = user_email(s, row.updated_by) if row is not None else None
            raise ConflictError(f"The quality settings changed since you opened them (now version {version}"
                                f"{', by ' + who if who else ''}); nothing was saved.",
                                hint="Reload to see the current threshold, then change it again.")
        before = {"disagreement_threshold": threshold_of(s, org), "version": version}
        if row is None:
            row = QualitySetting(organization_id=org, disagreement_threshold=value, version=1)
            s.add(row)
        else:
            row.disagreement_threshold, row.version = value, version + 1
        row.updated_by, row.updated_at = actor.user_id, now
        s.flush()
        audit.record(s, actor=actor, action="quality.settings", entity_type=SETTINGS_ENTITY, entity_id=org,
                     before=before, after={"disagreement_threshold": value, "version": row.version},
                     summary=f"Disagreement threshold {before['disagreement_threshold']:.2f} -> {value:.2f}")
        return row.version
