"""The pipeline_config row's one owner: get-or-create, the locked read, the version stamp, pause and resume.

Every change to the row is stamped (`stamp`: version + 1, when, by whom; None for the worker), so a form
loaded at one version refuses to save over a later change (`lock_at_version`). A pause carries its
`pause_kind` beside the reason people read: `manual` for a person's pause, the others set by the worker,
which lifts again only the kinds in `AUTO_RESUME_KINDS`, chosen by kind, never by reading the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.cache import invalidate_live
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import PAUSE_KINDS, PipelineConfig
from aiconsole.platform.db.sql import user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError

# The schema's vocabulary, named in the order models.PAUSE_KINDS lists it (unpacking fails if it grows).
MANUAL, DAILY_BUDGET, MONTHLY_BUDGET, CIRCUIT_OPEN, PROVIDER_DISABLED = PAUSE_KINDS
BUDGET_KINDS = frozenset({DAILY_BUDGET, MONTHLY_BUDGET})
# The worker's own pauses it lifts again: a new day or a raised budget, a probe that succeeds. A disabled
# provider stays paused until a person enables it and resumes.
AUTO_RESUME_KINDS = BUDGET_KINDS | {CIRCUIT_OPEN}


def lock(session: Session, organization_id: int) -> PipelineConfig | None:
    """The organization's row locked for update in the caller's transaction, or None if it has none."""
    return session.get(PipelineConfig, organization_id, with_for_update=True)


def lock_or_create(session: Session, organization_id: int) -> PipelineConfig:
    """The organization's row locked for update; created with the defaults, at version 0, if it has none."""
    cfg = lock(session, organization_id)
    if cfg is None:
        cfg = PipelineConfig(organization_id=organization_id, version=0)
        session.add(cfg)
        session.flush()
    return cfg


def lock_at_version(session: Session, organization_id: int, *, expected_version: int) -> PipelineConfig:
    """`lock_or_create`, refused with a ConflictError naming who changed it unless it is at `expected_version`."""
    cfg = lock_or_create(session, organization_id)
    if cfg.version != expected_version:
        who = user_email(session, cfg.updated_by) or "someone (or a worker)"
        when = cfg.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if cfg.updated_at else "recently"
        raise ConflictError(f"The pipeline settings were changed by {who} at {when} after you loaded them "
                            f"(now version {cfg.version}, you edited version {expected_version}); nothing was saved.",
                            hint="Reload the page to see their change, then make yours again.")
    return cfg


def stamp(cfg: PipelineConfig, *, by: int | None, now: datetime) -> None:
    """Mark the row changed: the next version, at `now`, by user `by` (None: the worker)."""
    cfg.version += 1
    cfg.updated_at = now
    cfg.updated_by = by


def pause_state(cfg: PipelineConfig) -> dict[str, Any]:
    """The pause columns as audit entries hold them (and a revert restores them)."""
    return {"paused": cfg.paused, "pause_kind": cfg.pause_kind, "pause_reason": cfg.pause_reason}


def pause(cfg: PipelineConfig, *, kind: str, reason: str | None, by: int | None, now: datetime) -> None:
    """Pause the organization for `kind` with `reason`, stamped."""
    if kind not in PAUSE_KINDS:
        raise ValueError(f"unknown pause kind {kind!r}; one of {PAUSE_KINDS}")
    cfg.paused, cfg.pause_kind, cfg.pause_reason, cfg.paused_at = True, kind, reason, now
    stamp(cfg, by=by, now=now)


def resume(cfg: PipelineConfig, *, by: int | None, now: datetime) -> None:
    """Clear the pause, stamped."""
    cfg.paused, cfg.pause_kind, cfg.pause_reason, cfg.paused_at = False, None, None, None
    stamp(cfg, by=by, now=now)


def auto_pause(session: Session, cfg: PipelineConfig, *, kind: str, reason: str, actor: Actor, now: datetime,
               noted: dict[str, Any] | None = None) -> None:
    """Pause the organization on the worker's own account in the caller's transaction, audited as `actor`.

    `noted` adds figures to the audit entry's after-state (e.g. the spend that reached a budget).
    """
    before = pause_state(cfg)
    pause(cfg, kind=kind, reason=reason, by=None, now=now)
    audit.record(session, actor=actor, action="queue.pause", entity_type="pipeline_config",
                 entity_id=str(cfg.organization_id), before=before, after={**pause_state(cfg), **(noted or {})},
                 summary=f"Paused processing automatically: {reason}", reversible=True)


def auto_pause_org(organization_id: int, *, kind: str, reason: str, actor_name: str = "worker",
                   engine: Engine | None = None, now: datetime | None = None) -> bool:
    """`auto_pause` in a transaction of its own; False when the organization has no row or is paused already."""
    now = now or utcnow()
    with service_session(engine=engine) as s:
        cfg = lock(s, organization_id)
        if cfg is None or cfg.paused:
            return False
        auto_pause(s, cfg, kind=kind, reason=reason, actor=Actor.system(actor_name, organization_id), now=now)
    invalidate_live(organization_id)
    return True


def auto_resume(session: Session, cfg: PipelineConfig, *, actor: Actor, now: datetime, why: str) -> None:
    """Clear an automatic pause in the caller's transaction, audited as `actor`."""
    before = pause_state(cfg)
    resume(cfg, by=None, now=now)
    audit.record(session, actor=actor, action="queue.resume", entity_type="pipeline_config",
                 entity_id=str(cfg.organization_id), before=before, after=pause_state(cfg),
                 summary=f"Resumed processing automatically: {why} (was: {before['pause_reason']})",
                 reversible=True)


def auto_resumable(session: Session) -> list[tuple[int, str, datetime | None]]:
    """(organization, pause kind, paused at) of every pause the worker may lift on its own."""
    rows = session.execute(select(PipelineConfig.organization_id, PipelineConfig.pause_kind, PipelineConfig.paused_at)
                           .where(PipelineConfig.paused.is_(True),
                                  PipelineConfig.pause_kind.in_(sorted(AUTO_RESUME_KINDS)))).all()
    return [(int(org), str(kind), paused_at) for org, kind, paused_at in rows]
