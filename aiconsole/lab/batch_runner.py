"""Running a batch test: its pending items in chunks through the worker's call path, bounded by the org's rate limit.

Each photo goes through `pipeline.calls.Caller.call` (the organization's provider settings and shared rate limit),
its tags get the current rules' verdicts and are compared with production's labels of the photo (Jaccard,
`pipeline.rules.jaccard`). Nothing is written to photos, results or tags: only the run's items. Every chunk
stamps the run's heartbeat and reads its cancel flag; a photo's failure is that item's error, never the run's.
`start` runs it on a thread in the console process; `resume` continues an interrupted run's pending items.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select, update

from aiconsole.pipeline.calls import Caller, CallOptions, shared_caller
from aiconsole.pipeline.context import OrgContext, load_org_context
from aiconsole.pipeline.images import load_image_bytes
from aiconsole.pipeline.routing import RouteDecision
from aiconsole.pipeline.rules import RuleSet, jaccard, load_rules
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import LabRun, LabRunItem, Photo, PhotoTag, PromptVersion
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AiconsoleError, ConflictError
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.prompts.render import PromptSpec, prompt_values, render_prompt
from aiconsole.providers.base import ImageInput
from aiconsole.providers.registry import capabilities

log = logging.getLogger(__name__)
OPTIONS = CallOptions(rate_limit_timeout_s=60.0)
MAX_IN_FLIGHT = 32
CHUNK_S = 15.0


def _caller(settings: Settings) -> Caller:
    return shared_caller("lab-batch", settings=settings, options=OPTIONS)


def in_flight(per_minute: int, latency_s: float = 1.0) -> int:
    """Calls to keep in flight so the rate limit, not latency, sets the pace (at most MAX_IN_FLIGHT)."""
    return max(1, min(MAX_IN_FLIGHT, math.ceil(per_minute / 60 * latency_s) + 2))


def _one(caller: Caller, ctx: OrgContext, rules: RuleSet, run: Any, spec: PromptSpec | None,
         photo: Any, production: list[str], settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        data = load_image_bytes(photo.storage_uri, settings=settings)
        image = ImageInput(data=data, content_type=photo.content_type, width=photo.width, height=photo.height,
                           sha256=photo.sha256)
        prompt = None
        if spec is not None and capabilities(run.provider).takes_prompt:
            prompt = render_prompt(spec, prompt_values(max_tags=OPTIONS.max_labels, width=photo.width,
                                                       height=photo.height, content_type=photo.content_type))
        result = caller.call(ctx, RouteDecision(run.provider, run.model, "batch test"), image, prompt, [])
    except AiconsoleError as exc:
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc.message}"[:1000],
                "latency_ms": round((time.perf_counter() - started) * 1000)}
    except Exception as exc:  # one bad photo never sinks the run
        return {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                "latency_ms": round((time.perf_counter() - started) * 1000)}
    tags = [{"label": t.label, "confidence": t.confidence, "verdict": rules.verdict(t.label, t.confidence)}
            for t in result.tags]
    return {"status": "done", "tags": tags, "tag_count": len(tags),
            "accepted_count": sum(t["verdict"] == "accepted" for t in tags),
            "jaccard": jaccard({str(t["label"]) for t in tags}, production), "cost_micros": result.cost_micros,
            "latency_ms": result.latency_ms}


def _spec(s: Any, run: Any) -> PromptSpec | None:
    if run.draft is not None:
        return PromptSpec(0, run.draft, ())
    if run.prompt_version_id is None:
        return None
    v = s.get(PromptVersion, run.prompt_version_id)
    return None if v is None else PromptSpec(int(v.id), v.content, tuple(v.variables or ()))


def execute(actor: Actor, *, run_id: int, chunk: int | None = None, settings: Settings | None = None) -> str:
    """Run the batch test's pending items to the end (or its cancel); returns its final status."""
    actor.require("testing.run")
    settings = settings or get_settings()
    org, caller = actor.organization_id, _caller(settings)
    with org_session(org, settings=settings) as s:
        run = s.scalar(select(LabRun).where(LabRun.organization_id == org, LabRun.id == run_id))
        if run is None or run.status != "running":
            raise ConflictError(f"Batch test #{run_id} is not running.", hint="Resume or start it again.")
        ctx = load_org_context(s, organization_id=org, settings=settings)
        rules, spec = load_rules(s, org), _spec(s, run)
        s.expunge(run)
    per_minute = ctx.setup(run.provider).rate_limit_per_minute
    width = in_flight(per_minute)
    # A chunk waits for its slowest call before the next starts: chunks of ~CHUNK_S seconds of the rate limit
    # keep that pause rare, and the heartbeat and cancel flag are still read every few seconds.
    chunk = chunk or max(width * 4, math.ceil(per_minute / 60 * CHUNK_S))
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="lab-batch") as pool:
        while True:
            with org_session(org, settings=settings) as s:
                beat = s.execute(update(LabRun).where(LabRun.id == run_id, LabRun.status == "running")
                                 .values(heartbeat_at=utcnow()))
                state = s.execute(select(LabRun.status, LabRun.cancel_requested).where(LabRun.id == run_id)).one()
                if getattr(beat, "rowcount", 1) == 0:
                    return str(state.status)  # marked interrupted meanwhile: leave it so
                if state.cancel_requested:
                    s.execute(update(LabRun).where(LabRun.id == run_id)
                              .values(status="cancelled", finished_at=utcnow()))
                    return "cancelled"
                items = s.execute(select(LabRunItem.id, Photo).join(Photo, Photo.id == LabRunItem.photo_id)
                                  .where(LabRunItem.run_id == run_id, LabRunItem.status == "pending")
                                  .order_by(LabRunItem.id).limit(chunk)).all()
                photo_ids = [p.id for _i, p in items]
                production: dict[int, set[str]] = {}
                for pid, label in s.execute(select(PhotoTag.photo_id, PhotoTag.label).where(
                        PhotoTag.organization_id == org, PhotoTag.photo_id.in_(photo_ids),
                        PhotoTag.review_state != "rejected")):
                    production.setdefault(int(pid), set()).add(label)
                s.expunge_all()
            if not items:
                break
            outs = list(pool.map(lambda it, prod=production: _one(caller, ctx, rules, run, spec, it[1],
                                                                  sorted(prod.get(it[1].id, ())), settings), items))
            caller.drain_stats()
            now = utcnow()
            with org_session(org, settings=settings) as s:
                for (item_id, photo), out in zip(items, outs, strict=True):
                    s.execute(update(LabRunItem).where(LabRunItem.id == item_id).values(
                        finished_at=now, production_labels=sorted(production.get(photo.id, ())), **out))
                s.execute(update(LabRun).where(LabRun.id == run_id).values(
                    processed=LabRun.processed + len(outs),
                    failed=LabRun.failed + sum(o["status"] == "failed" for o in outs),
                    cost_micros=LabRun.cost_micros + sum(int(o.get("cost_micros", 0)) for o in outs)))
    with org_session(org, settings=settings) as s:
        # Items whose photo was deleted since creation have no photo to join: they are failed, not pending forever.
        s.execute(update(LabRunItem).where(LabRunItem.run_id == run_id, LabRunItem.status == "pending")
                  .values(status="failed", error="The photo was deleted.", finished_at=utcnow()))
        left = s.scalar(select(func.count()).select_from(LabRunItem)
                        .where(LabRunItem.run_id == run_id, LabRunItem.status == "failed"))
        s.execute(update(LabRun).where(LabRun.id == run_id, LabRun.status == "running")
                  .values(status="completed", finished_at=utcnow(), failed=int(left or 0)))
    return "completed"


def resume(actor: Actor, *, run_id: int, settings: Settings | None = None) -> str:
    """Continue an interrupted batch test with the items it had not done."""
    actor.require("testing.run")
    with org_session(actor.organization_id, settings=settings) as s:
        done = s.execute(update(LabRun).where(LabRun.organization_id == actor.organization_id,
                                              LabRun.id == run_id, LabRun.status == "interrupted")
                         .values(status="running", heartbeat_at=utcnow(), error=None))
        if getattr(done, "rowcount", 0) == 0:
            raise ConflictError(f"Batch test #{run_id} is not interrupted.", hint="Only an interrupted run resumes.")
    return execute(actor, run_id=run_id, settings=settings)


def start(actor: Actor, *, run_id: int, chunk: int | None = None,
          settings: Settings | None = None) -> threading.Thread:
    """Run the batch test on a background thread of this process (its state is in the database)."""
    actor.require("testing.run")

    def work() -> None:
        try:
            execute(actor, run_id=run_id, chunk=chunk, settings=settings)
        except Exception:
            log.exception("batch test #%s stopped", run_id)
            with org_session(actor.organization_id, settings=settings) as s:
                s.execute(update(LabRun).where(LabRun.id == run_id, LabRun.status == "running")
                          .values(status="failed", finished_at=utcnow(), error="The runner failed; see the log."))

    t = threading.Thread(target=work, name=f"lab-batch-{run_id}", daemon=True)
    t.start()
    return t
