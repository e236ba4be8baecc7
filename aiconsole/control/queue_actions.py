"""Operator actions on an organization's queue: pause/resume, retry failed (all, or one failure reason),
requeue stuck, health check.

Each action checks the actor's permission, writes the audit log in the same transaction and returns a
short report of what it changed. A retry lists the photos it moved (with their earlier attempt counts) in its
audit entry, up to MAX_REVERTIBLE photos, so the audit log's Revert can put back the ones no worker has
picked up since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from aiconsole.pipeline import config_row, failures
from aiconsole.pipeline.health_report import provider_health, record_check
from aiconsole.pipeline.queue import lease_expired
from aiconsole.platform import audit, cache
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.db.sql import rowcount
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.health import system_health

MAX_REASON = 500
# A retry of more photos than this is audited by count alone, and so cannot be reverted.
MAX_REVERTIBLE = 5_000
_CHUNK = 500  # ids per IN list: far below SQLite's bound-parameter limit


@dataclass(frozen=True)
class ActionReport:
    """What an operator action did, in words and in numbers."""

    action: str
    affected: int
    message: str


def _set_paused(actor: Actor, *, paused: bool, reason: str | None, now: datetime) -> bool:
    """Flip the pause flag with an audited before/after; False when it already had that value."""
    with org_session(actor.organization_id) as s:
        cfg = config_row.lock_or_create(s, actor.organization_id)
        if cfg.paused == paused:
            return False
        before = config_row.pause_state(cfg)
        if paused:
            config_row.pause(cfg, kind=config_row.MANUAL, reason=f"Paused by {actor.email}: {reason}",
                             by=actor.user_id, now=now)
        else:
            config_row.resume(cfg, by=actor.user_id, now=now)
        summary = f"Paused processing: {reason}" if paused else f"Resumed processing (was: {before['pause_reason']})"
        audit.record(s, actor=actor, action="queue.pause" if paused else "queue.resume",
                     entity_type="pipeline_config", entity_id=str(actor.organization_id), before=before,
                     after=config_row.pause_state(cfg), summary=summary, reversible=True)
    cache.invalidate_live(actor.organization_id)
    return True


def pause(actor: Actor, *, reason: str, now: datetime | None = None) -> ActionReport:
    """Stop workers from claiming this organization's photos (in-flight photos finish)."""
    actor.require("queue.pause")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why processing is paused.", hint="The reason is shown on Live Status to everyone.")
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"The reason is longer than {MAX_REASON} characters.")
    if not _set_paused(actor, paused=True, reason=reason, now=now or utcnow()):
        return ActionReport("pause", 0, "Processing was already paused.")
    return ActionReport("pause", 1, "Processing paused. Photos already being processed will finish.")


def resume(actor: Actor, *, now: datetime | None = None) -> ActionReport:
    """Let workers claim this organization's photos again (also clears an automatic pause)."""
    actor.require("queue.resume")
    if not _set_paused(actor, paused=False, reason=None, now=now or utcnow()):
        return ActionReport("resume", 0, "Processing was not paused.")
    return ActionReport("resume", 1, "Processing resumed.")


def retry_failed(actor: Actor, *, now: datetime | None = None) -> ActionReport:
    """Put every failed photo back in the queue with a fresh attempt budget (last error kept)."""
    actor.require("queue.retry_failed")
    n = _requeue(actor, Photo.status == "failed", now=now or utcnow(), fresh_attempts=True,
                 action="queue.retry_failed", was="failed", summary="Requeued {photos}", revertible=True, what="failed")
    msg = f"Requeued {fmt.plural(n, 'failed photo')}." if n else "There were no failed photos to retry."
    return ActionReport("retry_failed", n, msg)


def retry_failed_group(actor: Actor, *, reason_kind: str, now: datetime | None = None) -> ActionReport:
    """Put the failed photos of one failure reason (`pipeline.failures` reason kind) back in the queue."""
    actor.require("queue.retry_failed")
    which = failures.in_group(organization_id=actor.organization_id, reason_kind=reason_kind)
    reason = failures.REASON_KINDS[reason_kind]
    n = _requeue(actor, which, now=now or utcnow(), fresh_attempts=True, action="queue.retry_failed",
                 was="failed", summary=f"Requeued {{photos}} ({reason_kind}): {reason}", revertible=True,
                 what="failed", detail={"reason_kind": reason_kind})
    msg = (f"Requeued {fmt.plural(n, 'failed photo')}. They had failed because {reason[:1].lower()}{reason[1:]}"
           if n else "No failed photo has that reason any more: it was retried or fixed meanwhile.")
    return ActionReport("retry_failed", n, msg)


def _write_lock(session: Session) -> None:
    """Take SQLite's write lock before reading what is about to change (a read-then-write deferred
    transaction fails at once when another process wrote in between); PostgreSQL locks the rows instead."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _requeue(actor: Actor, which: ColumnElement[bool], *, now: datetime, fresh_attempts: bool, action: str,
             was: str, summary: str, what: str = "", revertible: bool = False,
             detail: dict[str, str] | None = None) -> int:
    """Put the organization's photos matching `which` back in the queue, audited; how many moved.

    With `revertible`, the entry lists the photos by their attempt count before (when at most MAX_REVERTIBLE),
    which `revert_audit_retry` restores.
    """
    values: dict[str, object] = {"status": "pending", "next_attempt_at": None, "lease_owner": None,
                                 "lease_expires_at": None, "updated_at": now}
    if fresh_attempts:
        values["attempts"] = 0
    org = actor.organization_id
    mine = Photo.organization_id == org
    with org_session(org) as s:
        listed: dict[str, list[int]] | None = None
        if revertible:
            _write_lock(s)
            rows = s.execute(select(Photo.id, Photo.attempts).where(mine, which).order_by(Photo.id)
                             .limit(MAX_REVERTIBLE + 1).with_for_update()).all()
            if len(rows) <= MAX_REVERTIBLE:
                listed = {}
                for photo_id, attempts in rows:
                    listed.setdefault(str(attempts), []).append(int(photo_id))
        if listed is not None:
            ids = sorted(i for group in listed.values() for i in group)
            n = sum(rowcount(s.execute(update(Photo).where(mine, which, Photo.id.in_(ids[i:i + _CHUNK]))
                                       .values(**values))) for i in range(0, len(ids), _CHUNK))
        else:
            n = rowcount(s.execute(update(Photo).where(mine, which).values(**values)))
        if n:
            before: dict[str, object] = {was: n, **(detail or {})}
            if listed is not None:
                before["attempts_before"] = listed
            audit.record(s, actor=actor, action=action, entity_type="photos", entity_id=None,
                         before=before, after={"pending": n},
                         summary=summary.format(photos=fmt.plural(n, f"{what} photo".strip())),
                         reversible=listed is not None)
    cache.invalidate_live(org)
    return n


def revert_audit_retry(session: Session, *, actor: Actor, entry: audit.AuditRow) -> int:
    """Undo a retry: its photos that are still waiting untouched (pending, no attempt since) fail again with
    their earlier attempt counts; photos a worker picked up since keep their new outcome."""
    actor.require("queue.retry_failed")
    listed = (entry.before or {}).get("attempts_before")
    if not isinstance(listed, dict):
        raise ValidationFailed(f"Entry #{entry.id} does not list the photos it retried, so they cannot be put back.",
                               hint="Retry failed photos again from Live Status if needed.")
    org = actor.organization_id
    now = utcnow()
    restored = 0
    for attempts, ids in sorted(listed.items()):
        for i in range(0, len(ids), _CHUNK):
            restored += rowcount(session.execute(
                update(Photo).where(Photo.organization_id == org, Photo.id.in_([int(x) for x in ids[i:i + _CHUNK]]),
                                    Photo.status == "pending", Photo.attempts == 0)
                .values(status="failed", attempts=int(attempts), updated_at=now)))
    total = sum(len(ids) for ids in listed.values())
    if restored == 0:
        raise ConflictError(f"Every photo entry #{entry.id} retried has been picked up by a worker since.",
                            hint="Nothing is left to put back; see Live Status for how they ended.")
    cache.invalidate_live(org)
    left = total - restored
    return audit.record(session, actor=actor, action="revert", entity_type="photos", entity_id=None,
                        before={"pending": restored}, after={"failed": restored},
                        summary=f"Reverted entry #{entry.id}: {fmt.plural(restored, 'photo')} back to failed"
                                + (f" ({fmt.plural(left, 'photo')} already picked up {_keep(left)})" if left else ""))


def _keep(n: int) -> str:
    return "keeps its new outcome" if n == 1 else "keep their new outcome"


def stuck_count(*, organization_id: int, now: datetime | None = None) -> int:
    """Photos in processing whose lease has expired (their worker stopped heartbeating)."""
    now = now or utcnow()
    with org_session(organization_id) as s:
        return int(s.scalar(
            select(func.count()).select_from(Photo).where(Photo.organization_id == organization_id, lease_expired(now))
        ) or 0)


def requeue_stuck(actor: Actor, *, now: datetime | None = None) -> ActionReport:
    """Return photos with expired leases to the queue now instead of waiting for the reaper."""
    actor.require("queue.requeue_stuck")
    now = now or utcnow()
    n = _requeue(actor, lease_expired(now), now=now, fresh_attempts=False,
                 action="queue.requeue_stuck", was="stuck", summary="Requeued {photos} with expired leases",
                 what="stuck")
    msg = f"Requeued {fmt.plural(n, 'stuck photo')}." if n else "No photo is stuck: every lease is still live."
    return ActionReport("requeue_stuck", n, msg)


def run_health_check(actor: Actor, *, now: datetime | None = None) -> ActionReport:
    """Check the database, Redis and workers, and record each provider's health from its recent traffic."""
    actor.require("health.check")
    now = now or utcnow()
    report = system_health()
    providers = provider_health(organization_id=actor.organization_id, now=now)
    with org_session(actor.organization_id) as s:
        record_check(s, organization_id=actor.organization_id, report=providers, now=now)
        audit.record(s, actor=actor, action="health.check", entity_type="system", entity_id=None,
                     before=None, after={"system": report.status,
                                         **{p.provider: p.status for p in providers.providers}},
                     summary=f"Health check: system {report.status}")
    cache.invalidate_live(actor.organization_id)
    problems = [f"{c.name}: {c.message}" for c in report.checks if c.status != "healthy"]
    provider_text = ", ".join(f"{p.provider} {p.status.replace('_', ' ')}" for p in providers.providers) \
        or "no provider traffic"
    message = f"System {report.status}. Providers: {provider_text}."
    if problems:
        message += " " + "; ".join(problems)
    return ActionReport("health_check", len(providers.providers), message)


def revert_audit(session: Session, *, actor: Actor, entry: audit.AuditRow) -> int:
    """Undo a pause (resume) or a resume (pause again with the earlier reason): the audit log's Revert."""
    before, after = entry.before or {}, entry.after or {}
    if "paused" not in before or "paused" not in after or before["paused"] == after["paused"]:
        raise ValidationFailed(f"Entry #{entry.id} did not pause or resume processing.",
                               hint="Pause or resume on the Live Status page instead.")
    paused = bool(before["paused"])
    actor.require("queue.pause" if paused else "queue.resume")
    if entry.entity_id != str(actor.organization_id):
        raise NotFound(f"Entry #{entry.id} belongs to another organization's queue.", hint="Reload the audit log.")
    cfg = config_row.lock_or_create(session, actor.organization_id)
    current = config_row.pause_state(cfg)
    if current["paused"] != after["paused"] or current["pause_reason"] != after.get("pause_reason"):
        state = "paused" if cfg.paused else "running"
        raise ConflictError(f"Processing was paused or resumed again since entry #{entry.id} (it is {state} now).",
                            hint="Revert the later change first, or pause/resume on the Live Status page.")
    now = utcnow()
    if paused:
        # Entries from before pause kinds were recorded restore as a person's pause (never lifted automatically).
        config_row.pause(cfg, kind=before.get("pause_kind") or config_row.MANUAL, reason=before.get("pause_reason"),
                         by=actor.user_id, now=now)
    else:
        config_row.resume(cfg, by=actor.user_id, now=now)
    what = "paused processing again" if paused else "resumed processing"
    return audit.record(session, actor=actor, action="revert", entity_type="pipeline_config",
                        entity_id=str(actor.organization_id), before=current, after=config_row.pause_state(cfg),
                        summary=f"Reverted entry #{entry.id}: {what}", reversible=True)
