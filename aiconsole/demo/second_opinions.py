"""The demo's second opinions: a sample of the last week's processed photos tagged again by another source, so
the Quality page's Disagreement tab and the review queue's Disagreement order show real disagreements on
first start.

As a team does when it weighs a switch: photos the local analyzer or Google Vision tagged are run through
Gemini, and photos Gemini tagged are run again with another version of its prompt. The second answer keeps
most of the first one's labels (each with SECOND_KEEP), now and then swaps one for a label the organization
uses elsewhere (a confusion) or adds one, so most pairs agree well and some fall below the 0.5 threshold. Its
tags get the rules' verdicts (history.ACCEPT / REJECT) and a photo with a tag in the band goes to needs_review,
as the pipeline records it. Reviewed photos are left alone. `add_second_opinions` writes the rows in the
seed's transaction (before the rollups are rebuilt, so Live Status counts them); `count_disagreements`
brings the organization's disagreement facts up to date once the seed has committed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from aiconsole.demo.history import ACCEPT, GEMINI_MODEL, REJECT
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import AiProcessingResult, Photo, PhotoTag, PromptVersion
from aiconsole.platform.settings import Settings
from aiconsole.quality import disagreement

SECOND_SHARE = 0.08  # of the last week's unreviewed processed photos
MAX_SECOND = 600
SECOND_KEEP = 0.8  # chance the second source gives each of the first one's labels too
SWAP, ADD = 0.3, 0.25  # chance it swaps one label for another the organization uses, adds one
WINDOW = timedelta(days=7)


def _verdict(confidence: float) -> str:
    return "accepted" if confidence >= ACCEPT else "rejected" if confidence < REJECT else "needs_review"


def _second_labels(rng: random.Random, labels: list[str], pool: list[str]) -> list[str]:
    out = [label for label in labels if rng.random() < SECOND_KEEP] or labels[:1]
    if pool and rng.random() < SWAP:
        out = [*out[1:], rng.choice(pool)] if out else [rng.choice(pool)]
    if pool and rng.random() < ADD:
        out.append(rng.choice(pool))
    return list(dict.fromkeys(out))


def add_second_opinions(session: Session, *, organization_id: int, now: datetime, summary: dict[str, Any],
                        seed: int) -> int:
    """Write the second sources' results and tags (see the module); add them to the seed's `summary` counts.
    Returns how many photos got one."""
    rng = random.Random(seed + 2)  # its own stream: the rest of the demo stays as it was
    r, p = AiProcessingResult, Photo
    reviewed = select(PhotoTag.photo_id).where(PhotoTag.organization_id == organization_id,
                                               PhotoTag.reviewed_at.is_not(None))
    firsts = session.execute(
        select(r.id, r.photo_id, r.ai_provider, r.prompt_version_id, r.tags, r.created_at, r.worker_id)
        .join(p, p.id == r.photo_id)
        .where(r.organization_id == organization_id, r.status.in_(("completed", "needs_review")),
               r.created_at >= now - WINDOW, r.created_at < now - timedelta(hours=2), r.tag_count > 0,
               p.status.in_(("completed", "needs_review")), p.id.not_in(reviewed))
        .order_by(r.id)).all()
    picked = [row for row in firsts if rng.random() < SECOND_SHARE][:MAX_SECOND]
    if not picked:
        return 0
    pool = sorted({str(t["label"]) for row in firsts[:5000] for t in row.tags})
    versions: list[int | None] = list(session.scalars(
        select(PromptVersion.id).where(PromptVersion.organization_id == organization_id).order_by(PromptVersion.id)))
    gemini_cost = int(session.scalar(select(func.avg(r.api_cost_micros)).where(
        r.organization_id == organization_id, r.ai_provider == "gemini", r.status == "completed")) or 0)
    results, tags, to_review = [], [], set()
    for row in picked:
        labels = [str(t["label"]) for t in row.tags]
        if row.ai_provider == "gemini":
            others = [v for v in versions if v != row.prompt_version_id]
            version = rng.choice(others) if others else row.prompt_version_id
        else:
            version = row.prompt_version_id if row.prompt_version_id in versions else (versions or [None])[-1]
        second = _second_labels(rng, labels, pool)
        confidences = [round(rng.uniform(0.55, 0.98), 3) for _ in second]
        answer: list[dict[str, Any]] = [{"label": label, "confidence": c} for label, c in zip(second, confidences,
                                                                                              strict=True)]
        at = row.created_at + timedelta(minutes=rng.randint(20, 90))
        latency = rng.randint(700, 2600)
        results.append({"organization_id": organization_id, "photo_id": row.photo_id, "ai_provider": "gemini",
                         "model": GEMINI_MODEL, "prompt_version_id": version,
                         "status": "needs_review" if any(_verdict(c) == "needs_review" for c in confidences)
                         else "completed", "tags": answer, "tag_count": len(answer),
                         "avg_confidence": sum(confidences) / len(confidences),
                         "min_confidence": min(confidences), "api_cost_micros": gemini_cost,
                         "provider_response_time_ms": latency, "total_processing_time_ms": latency + 40,
                         "queue_wait_time_ms": rng.randint(200, 4000), "worker_id": row.worker_id,
                         "trace": [], "created_at": at})
    ids = session.execute(insert(AiProcessingResult).returning(AiProcessingResult.id), results).scalars().all()
    for rid, res in zip(ids, results, strict=True):
        for a in res["tags"]:
            state = _verdict(a["confidence"])
            to_review.update([res["photo_id"]] if state == "needs_review" else [])
            tags.append({"organization_id": organization_id, "photo_id": res["photo_id"], "result_id": rid,
                         "label": a["label"], "confidence": a["confidence"], "source": "ai", "review_state": state,
                         "created_at": res["created_at"]})
    session.execute(insert(PhotoTag), tags)
    if to_review:
        session.execute(update(Photo).where(Photo.id.in_(sorted(to_review)), Photo.status == "completed")
                        .values(status="needs_review"))
    summary["results"] += len(results)
    summary["photo_tags"] += len(tags)
    summary["needs_review_tags"] += sum(1 for t in tags if t["review_state"] == "needs_review")
    return len(results)


def count_disagreements(*, organization_id: int, settings: Settings | None = None) -> int:
    """After the seed commits: the organization's disagreement facts over every result; photos recomputed."""
    return disagreement.refresh_all(Actor.system("demo", organization_id), chunk=10_000, settings=settings).photos
