"""Batch tests: create, list, read and cancel a run (a prompt version x provider/model over a set of photos).

A run and one item per photo are written at creation, so the run's state lives in the database: the page can be
left and reopened, and a runner that died (its heartbeat older than STALE_AFTER) reads as 'interrupted' and can
be resumed (`batch_runner.resume`), doing only the items still pending. Shadow replays take the organization's
last N production photos; like every batch test they write no tags or results, only lab rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import LAB_RUN_SOURCES, GoldenSetItem, LabRun, LabRunItem, Photo, PromptVersion
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.platform.permissions import PERMISSIONS
from aiconsole.platform.settings import Settings
from aiconsole.providers.registry import PROVIDER_MODELS, PROVIDER_NAMES, default_model

MAX_PHOTOS = 2_000
STALE_AFTER = timedelta(minutes=2)  # a chunk beats every few seconds; two minutes without one: the runner died
VIEW = "lab.view" if "lab.view" in PERMISSIONS else "quality.view"


@dataclass(frozen=True)
class RunRow:
    """A batch test as the list and the progress bar show it."""

    id: int
    name: str
    source: str
    provider: str
    model: str
    prompt_version_id: int | None
    status: str
    total: int
    processed: int
    failed: int
    cost_micros: int
    estimate_micros: int
    created_at: datetime
    heartbeat_at: datetime | None
    finished_at: datetime | None
    error: str | None


def _row(r: Any) -> RunRow:
    return RunRow(r.id, r.name, r.source, r.provider, r.model, r.prompt_version_id, r.status, r.total, r.processed,
                  r.failed, r.cost_micros, r.estimate_micros, r.created_at, r.heartbeat_at, r.finished_at, r.error)


def _photo_ids(s: Session, org: int, source: str, n: int, selection: dict[str, Any]) -> list[int]:
    p = Photo
    if source == "golden":
        gid = int(selection.get("golden_set_id") or 0)
        q = select(GoldenSetItem.photo_id).where(GoldenSetItem.organization_id == org,
                                                 GoldenSetItem.golden_set_id == gid,
                                                 GoldenSetItem.photo_id.is_not(None)).order_by(GoldenSetItem.id)
    elif source == "shadow":
        q = select(p.id).where(p.organization_id == org, p.status.in_(("completed", "needs_review"))) \
            .order_by(p.id.desc())
    elif source == "filter":
        q = select(p.id).where(p.organization_id == org)
        if selection.get("status"):
            q = q.where(p.status == selection["status"])
        if selection.get("since"):
            q = q.where(p.created_at >= datetime.fromisoformat(selection["since"]))
        q = q.order_by(p.id.desc())
    else:  # sample: a random N of the organization's photos
        q = select(p.id).where(p.organization_id == org).order_by(func.random())
    return [int(i) for i in s.scalars(q.limit(n)) if i is not None]


def create_run(actor: Actor, *, source: str, n: int, provider: str, model: str | None = None,
               prompt_version_id: int | None = None, draft: str | None = None, name: str | None = None,
               selection: dict[str, Any] | None = None, estimate_micros: int = 0,
               settings: Settings | None = None) -> RunRow:
    """Write a running batch test and its pending items; execution is `batch_runner.execute`/`start`."""
    actor.require("testing.run")
    if source not in LAB_RUN_SOURCES:
        raise ValidationFailed(f"There is no photo source '{source}'.", hint=f"Choose one of {LAB_RUN_SOURCES}.")
    if provider not in PROVIDER_NAMES:
        raise ValidationFailed(f"There is no provider '{provider}'.", hint=f"Choose one of {PROVIDER_NAMES}.")
    model = model or default_model(provider)
    if model not in PROVIDER_MODELS[provider]:
        raise ValidationFailed(f"{provider} has no model '{model}'.", hint=f"Its models: {PROVIDER_MODELS[provider]}.")
    if not 1 <= n <= MAX_PHOTOS:
        raise ValidationFailed(f"{n} photos is outside 1..{MAX_PHOTOS:,}.", hint="Test on fewer photos.")
    org, selection = actor.organization_id, dict(selection or {})
    with org_session(org, settings=settings) as s:
        if prompt_version_id is not None and s.scalar(select(PromptVersion.id).where(
                PromptVersion.organization_id == org, PromptVersion.id == prompt_version_id)) is None:
            raise NotFound(f"There is no prompt version #{prompt_version_id} here.", hint="Pick a saved version.")
        ids = _photo_ids(s, org, source, n, selection)
        if not ids:
            raise ValidationFailed("No photo matches this selection.", hint="Upload photos or widen the selection.")
        now = utcnow()
        run = LabRun(organization_id=org, name=(name or f"{source} x {provider}/{model}")[:200], source=source,
                     selection=selection, provider=provider, model=model, prompt_version_id=prompt_version_id,
                     draft=draft, status="running", total=len(ids), estimate_micros=estimate_micros,
                     created_by=actor.user_id, created_at=now, heartbeat_at=now)
        s.add(run)
        s.flush()
        s.execute(insert(LabRunItem), [{"organization_id": org, "run_id": run.id, "photo_id": i, "status": "pending",
                                        "tags": [], "production_labels": [], "tag_count": 0, "accepted_count": 0,
                                        "cost_micros": 0, "latency_ms": 0} for i in ids])
        return _row(run)


def expire_stale(org: int, *, now: datetime | None = None, settings: Settings | None = None) -> int:
    """Mark running runs whose heartbeat is older than STALE_AFTER as interrupted (resumable); returns how many."""
    cutoff = (now or utcnow()) - STALE_AFTER
    with org_session(org, settings=settings) as s:
        done = s.execute(update(LabRun).where(LabRun.organization_id == org, LabRun.status == "running",
                                              LabRun.heartbeat_at < cutoff)
                         .values(status="interrupted", error="Its runner stopped (the console restarted or the "
                                                             "session closed); resume it to finish the rest."))
        return int(getattr(done, "rowcount", 0) or 0)


def get_run(actor: Actor, *, run_id: int, settings: Settings | None = None) -> RunRow:
    """One batch test of the actor's organization."""
    actor.require(VIEW)
    expire_stale(actor.organization_id, settings=settings)
    with org_session(actor.organization_id, settings=settings) as s:
        r = s.scalar(select(LabRun).where(LabRun.organization_id == actor.organization_id, LabRun.id == run_id))
        if r is None:
            raise NotFound(f"There is no batch test #{run_id} in this organization.", hint="Pick one from the list.")
        return _row(r)


def list_runs(actor: Actor, *, limit: int = 50, settings: Settings | None = None) -> list[RunRow]:
    """The organization's batch tests, newest first."""
    actor.require(VIEW)
    expire_stale(actor.organization_id, settings=settings)
    with org_session(actor.organization_id, settings=settings) as s:
        rows = s.scalars(select(LabRun).where(LabRun.organization_id == actor.organization_id)
                         .order_by(LabRun.id.desc()).limit(limit))
        return [_row(r) for r in rows]


def cancel_run(actor: Actor, *, run_id: int, settings: Settings | None = None) -> RunRow:
    """Ask a running batch test to stop after its current chunk (an interrupted one is cancelled at once)."""
    actor.require("testing.run")
    with org_session(actor.organization_id, settings=settings) as s:
        s.execute(update(LabRun).where(LabRun.organization_id == actor.organization_id, LabRun.id == run_id,
                                       LabRun.status == "running").values(cancel_requested=True))
        s.execute(update(LabRun).where(LabRun.organization_id == actor.organization_id, LabRun.id == run_id,
                                       LabRun.status == "interrupted")
                  .values(status="cancelled", finished_at=utcnow()))
    return get_run(actor, run_id=run_id, settings=settings)
