"""The organization's quality settings row (quality_settings): its keys (the second-review share, the
disagreement threshold), each one's check and wording, one version for the row, and the one write: validated,
version-checked, audited with before and after, and revertible from the audit log (`revert_audit`, reached by
admin's Revert through `quality.public`; refused when the row changed since). No row means the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.audit import AuditRow
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import DEFAULT_DISAGREEMENT_THRESHOLD, DEFAULT_DOUBLE_REVIEW_SHARE, QualitySetting
from aiconsole.platform.db.sql import user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings

SETTINGS_ENTITY = "quality_settings"
SHARE = "double_review_share"
THRESHOLD = "disagreement_threshold"


def _checked(value: object, *, name: str, short: str, example: str, range_hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed(f"The {name} must be a number, not {value!r}.", hint=example)
    if not 0.0 <= float(value) <= 1.0:
        raise ValidationFailed(f"A {short} of {value} is outside 0..1.", hint=range_hint)
    return float(value)


@dataclass(frozen=True)
class Key:
    """One setting of the row: its column (and audit key), what people call it, its default, its check."""

    column: str
    what: str
    default: float
    check: Callable[[object], float]
    shown: Callable[[float], str]
    where: str  # where people change it by hand


def checked_share(value: object) -> float:
    """`value` as a share of reviewed photos in 0..1, else ValidationFailed saying what to enter."""
    return _checked(value, name="share of photos for a second review", short="share",
                    example="Use e.g. 0.05 for 5% of reviewed photos.",
                    range_hint="Use 0 (no second reviews) to 1 (every reviewed photo), e.g. 0.05 for 5%.")


def checked_threshold(value: object) -> float:
    """`value` as a disagreement threshold in 0..1, else ValidationFailed saying what to enter."""
    return _checked(value, name="disagreement threshold", short="disagreement threshold",
                    example="Use a Jaccard similarity between 0 and 1, e.g. 0.5.",
                    range_hint="Jaccard similarity runs from 0 (no label in common) to 1 (the same labels); e.g. 0.5.")


KEYS: dict[str, Key] = {
    SHARE: Key(SHARE, "second-review share", DEFAULT_DOUBLE_REVIEW_SHARE, checked_share, lambda v: f"{v:.2%}",
               "the Agreement tab"),
    THRESHOLD: Key(THRESHOLD, "disagreement threshold", DEFAULT_DISAGREEMENT_THRESHOLD, checked_threshold,
                   lambda v: f"{v:.2f}", "the Disagreement tab"),
}


@dataclass(frozen=True)
class SettingView:
    """One setting as read, with the row's version (0: never saved) and who changed the row last."""

    value: float
    version: int
    updated_by: str | None
    updated_at: datetime | None


def value_of(session: Session, org: int, key: str) -> float:
    """The organization's value of `key` in an open session (its default when never saved)."""
    row = session.get(QualitySetting, org)
    return KEYS[key].default if row is None else float(getattr(row, key))


def read(actor: Actor, *, key: str, settings: Settings | None = None) -> SettingView:
    """The acting organization's `key` (quality.view)."""
    actor.require("quality.view")
    with org_session(actor.organization_id, settings=settings) as s:
        row = s.get(QualitySetting, actor.organization_id)
        if row is None:
            return SettingView(KEYS[key].default, 0, None, None)
        return SettingView(float(getattr(row, key)), row.version, user_email(s, row.updated_by), row.updated_at)


def _locked(session: Session, org: int) -> QualitySetting | None:
    return session.execute(select(QualitySetting).where(QualitySetting.organization_id == org)
                           .with_for_update()).scalar_one_or_none()


def write(actor: Actor, *, key: str, value: object, expected_version: int, now: datetime | None = None,
          settings: Settings | None = None) -> int:
    """Set `key` (quality.configure), refused unless the row is still at `expected_version` (0 when never
    saved); audited with before and after, revertible. Returns the new version."""
    actor.require("quality.configure")
    spec = KEYS[key]
    checked, now, org = spec.check(value), now or utcnow(), actor.organization_id
    with org_session(org, settings=settings) as s:
        row = _locked(s, org)
        version = 0 if row is None else row.version
        if version != expected_version:
            who = user_email(s, row.updated_by) if row is not None else None
            raise ConflictError(f"The quality settings changed since you opened them (now version {version}"
                                f"{', by ' + who if who else ''}); nothing was saved.",
                                hint=f"Reload to see the current {spec.what.split()[-1]}, then change it again.")
        before = value_of(s, org, key)
        if row is None:
            row = QualitySetting(organization_id=org, version=1, **{key: checked})
            s.add(row)
        else:
            setattr(row, key, checked)
            row.version = version + 1
        row.updated_by, row.updated_at = actor.user_id, now
        s.flush()
        audit.record(s, actor=actor, action="quality.settings", entity_type=SETTINGS_ENTITY, entity_id=org,
                     before={key: before, "version": version}, after={key: checked, "version": row.version},
                     summary=f"{spec.what[:1].upper()}{spec.what[1:]} {spec.shown(before)} -> {spec.shown(checked)}",
                     reversible=True)
        return row.version


def revert_audit(session: Session, *, actor: Actor, entry: AuditRow) -> int:
    """Set the setting `entry` changed back to its value before, in the caller's transaction (the audit log's
    Revert), refused unless the row is still at the version the entry left; returns the revert's entry."""
    actor.require("quality.configure")
    org = actor.organization_id
    if entry.organization_id != org or entry.entity_type != SETTINGS_ENTITY:
        raise NotFound(f"Audit entry #{entry.id} is not a quality setting of this organization.",
                       hint="Reload the audit log and pick an entry from the list.")
    before, after = entry.before or {}, entry.after or {}
    changed = [k for k in KEYS if k in after and k in before]
    if len(changed) != 1 or set(after) != {changed[0], "version"}:
        raise ValidationFailed(f"Audit entry #{entry.id} ({entry.action}) does not change one quality setting, so "
                               "it cannot be reverted here.", hint="Change that setting by hand where it is set.")
    spec = KEYS[changed[0]]
    row = _locked(session, org)
    version = 0 if row is None else row.version
    if row is None or version != after["version"]:
        who = user_email(session, row.updated_by) if row is not None else None
        raise ConflictError(f"The quality settings changed since entry #{entry.id} (it left version "
                            f"{after['version']}, now version {version}{', by ' + who if who else ''}); nothing was "
                            "reverted.", hint=f"Revert the later change first, or set the {spec.what} on "
                                              f"{spec.where}.")
    current, value = float(getattr(row, spec.column)), spec.check(before[spec.column])
    setattr(row, spec.column, value)
    row.version = version + 1
    row.updated_by, row.updated_at = actor.user_id, utcnow()
    session.flush()
    return audit.record(session, actor=actor, action="revert", entity_type=SETTINGS_ENTITY, entity_id=org,
                        before={spec.column: current, "version": version},
                        after={spec.column: value, "version": row.version},
                        summary=f"Reverted #{entry.id}: {spec.what} {spec.shown(current)} -> {spec.shown(value)}",
                        reversible=True)
