"""The disagreement threshold: a photo whose two sources' label sets have a Jaccard similarity below it is a
disagreement (the queue's disagreement order, the Quality page's list). Per organization, on its
quality_settings row (the row double_review's share lives on, one version for both; `quality_settings.py` owns
its write: validated, version-checked, audited, revertible). No row means the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from aiconsole.platform.actor import Actor
from aiconsole.platform.settings import Settings
from aiconsole.quality import quality_settings
from aiconsole.quality.quality_settings import SETTINGS_ENTITY, THRESHOLD, checked_threshold

__all__ = ["SETTINGS_ENTITY", "ThresholdView", "checked_threshold", "disagreement_threshold",
           "set_disagreement_threshold", "threshold_of"]


@dataclass(frozen=True)
class ThresholdView:
    """The threshold as read, with the settings' version (0: never saved) and who changed them last."""

    threshold: float
    version: int
    updated_by: str | None
    updated_at: datetime | None


def threshold_of(session: Session, org: int) -> float:
    """The organization's threshold in an open session."""
    return quality_settings.value_of(session, org, THRESHOLD)


def disagreement_threshold(actor: Actor, *, settings: Settings | None = None) -> ThresholdView:
    """The acting organization's disagreement threshold (quality.view)."""
    view = quality_settings.read(actor, key=THRESHOLD, settings=settings)
    return ThresholdView(view.value, view.version, view.updated_by, view.updated_at)


def set_disagreement_threshold(actor: Actor, *, threshold: float, expected_version: int,
                               now: datetime | None = None, settings: Settings | None = None) -> int:
    """Set the threshold (quality.configure), refused unless the quality settings are still at
    `expected_version` (0 when never saved); audited with before and after, revertible. Returns the new version."""
    return quality_settings.write(actor, key=THRESHOLD, value=threshold, expected_version=expected_version, now=now,
                                  settings=settings)
