"""Undo an audited change: the audit log page's Revert button.

Each entity's owning module knows how to restore its own state, through a function
`revert_audit(session, *, actor, entry) -> int` that checks the actor's permission for that entity, refuses
when the entity changed again since `entry`, applies `entry.before` and records the revert's own audit entry
in the caller's session, returning that entry's id. This module checks `audit.revert`, loads the entry of the
actor's organization, refuses what cannot be reverted, dispatches, and marks the entry reverted, all in one
transaction: the restore, the new entry and the mark commit together or not at all.

The owners are imported functions, so moving or renaming one breaks this module's import (and every test
that imports it), not the Revert button. Control's owners come through its public module
(`aiconsole.control.public`) and quality's through `aiconsole.quality.public`, the imports between areas the
contracts allow; no owner imports this module back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.admin import users
from aiconsole.control.public import ACTION_REVERT_OWNERS, REVERT_OWNERS, RevertFunction
from aiconsole.platform import audit, cache
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import AuditLog
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts import versions as prompt_versions
from aiconsole.quality.public import REVERT_OWNERS as QUALITY_REVERT_OWNERS

REVERT_ACTION = "revert"
MAX_CHAIN = 1000

# entity_type -> the function that restores it.
OWNERS: dict[str, RevertFunction] = {
    **REVERT_OWNERS,
    **QUALITY_REVERT_OWNERS,
    "prompt_label": prompt_versions.revert_audit,
    "user": users.revert_audit,
}
ACTION_OWNERS: dict[str, RevertFunction] = dict(ACTION_REVERT_OWNERS)


@dataclass(frozen=True)
class RevertResult:
    """What a revert did: the entry reverted, the revert's own entry, and a sentence for the user."""

    original_id: int
    revert_id: int
    entity_type: str
    entity_id: str | None
    message: str


def _root_action(session: Session, entry: AuditLog) -> str:
    """The action a chain of reverts started from (a revert of a pause is still the queue's to revert)."""
    current = entry
    for _ in range(MAX_CHAIN):
        if current.action != REVERT_ACTION:
            return current.action
        parent = session.scalars(select(AuditLog).where(
            AuditLog.organization_id == entry.organization_id, AuditLog.reverted_by_id == current.id)).first()
        if parent is None:
            return current.action
        current = parent
    return current.action


def owner(entity_type: str, root_action: str) -> RevertFunction | None:
    """The function that restores this kind of entry, or None if nobody can."""
    return ACTION_OWNERS.get(root_action) or OWNERS.get(entity_type)


def _revert_function(entity_type: str, root_action: str) -> RevertFunction:
    function = owner(entity_type, root_action)
    if function is None:
        raise ValidationFailed(f"Changes to '{entity_type}' cannot be reverted from the audit log yet.",
                               hint="Make the opposite change by hand on the page where it was made.")
    return function


def _refuse_if_done(session: Session, entry: AuditLog) -> None:
    if entry.reverted_by_id is not None:
        by = session.get(AuditLog, entry.reverted_by_id)
        who = f" by {by.actor} at {by.created_at:%Y-%m-%d %H:%M} UTC" if by is not None else ""
        raise ConflictError(f"Entry #{entry.id} was already reverted{who} (entry #{entry.reverted_by_id}).",
                            hint="To restore the change, revert that revert entry instead.")
    if not entry.reversible:
        raise ValidationFailed(f"Entry #{entry.id} ({entry.action}) cannot be reverted: the log does not hold "
                               "everything needed to restore it (for example a replaced secret).",
                               hint="Make the opposite change by hand on the page where it was made.")


def revert(actor: Actor, *, audit_id: int, settings: Settings | None = None) -> RevertResult:
    """Restore the state before audit entry `audit_id` of the actor's organization; the revert is audited."""
    actor.require("audit.revert")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        # The row lock makes two admins reverting the same entry at once take turns; the second is refused.
        entry = s.scalars(select(AuditLog).where(
            AuditLog.id == audit_id, AuditLog.organization_id == actor.organization_id).with_for_update()).first()
        if entry is None:
            raise NotFound(f"There is no audit entry #{audit_id} in your organization.",
                           hint="Reload the audit log and pick an entry from the list.")
        _refuse_if_done(s, entry)
        function = _revert_function(entry.entity_type, _root_action(s, entry))
        revert_id = function(s, actor=actor, entry=audit.to_row(entry))
        entry.reverted_by_id = revert_id
        s.flush()
        result = RevertResult(original_id=entry.id, revert_id=revert_id, entity_type=entry.entity_type,
                              entity_id=entry.entity_id,
                              message=f"Reverted entry #{entry.id} ({entry.action} of {entry.entity_type} "
                                      f"{entry.entity_id or ''}); recorded as entry #{revert_id}.")
    if entry.entity_type == "pipeline_config":
        cache.invalidate_live(actor.organization_id)
    return result
