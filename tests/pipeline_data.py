"""Test support for the Pipeline settings: an organization with a pipeline config, providers and hand-built results."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, PhotoTag, PipelineConfig, ProviderConfig, User
from aiconsole.platform.db.types import utcnow

_seq = itertools.count()


def make_org(*, enabled: dict[str, bool] | None = None, config: bool = True) -> tuple[int, Actor]:
    """An org with a local pipeline (accept 0.8, reject 0.4) and provider rows; returns (org id, its admin)."""
    org = users.create_organization(name=f"Pipeline test {uuid.uuid4().hex[:8]}").id
    with service_session() as s:
        admin = User(organization_id=org, email=f"admin-{uuid.uuid4().hex[:8]}@example.com", display_name="Ada",
                     role="admin")
        s.add(admin)
        s.flush()
        if config:
            s.add(PipelineConfig(organization_id=org, active_provider="local", active_model="local-analyzer-v1",
                                 accept_threshold=0.8, reject_threshold=0.4, max_retries=3, worker_concurrency=8))
        for provider, on in (enabled if enabled is not None else {"gemini": True, "google-vision": False}).items():
            s.add(ProviderConfig(organization_id=org, provider=provider, enabled=on))
        actor = Actor(user_id=admin.id, email=admin.email, role="admin", organization_id=org)
    return org, actor


def as_role(actor: Actor, role: str) -> Actor:
    """The same person with another role (permission tests)."""
    return Actor(user_id=actor.user_id, email=actor.email, role=role, organization_id=actor.organization_id)


def add_result(org: int, *, tags: Sequence[tuple[str, float]] = (), status: str = "completed",
               provider: str = "local", model: str = "local-analyzer-v1", created_at: datetime | None = None,
               human_tags: Sequence[tuple[str, float]] = (), width: int = 64, height: int = 64,
               **columns: Any) -> int:
    """A photo with one result and its AI (and human) tags; returns the result id."""
    when = created_at or utcnow() - timedelta(hours=1)
    n = next(_seq)
    with service_session() as s:
        photo = Photo(organization_id=org, sha256=f"{n:064x}", storage_uri=f"mem://{n}", filename=f"p{n}.jpg",
                      content_type="image/jpeg", byte_size=100, width=width, height=height, status=status,
                      created_at=when)
        s.add(photo)
        s.flush()
        confs = [c for _, c in tags]
        result = AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider=provider, model=model,
                                    status=status, tags=[{"label": lb, "confidence": c} for lb, c in tags],
                                    tag_count=len(tags), avg_confidence=sum(confs) / len(confs) if confs else None,
                                    created_at=when, **columns)
        s.add(result)
        s.flush()
        for source, pairs in (("ai", tags), ("human", human_tags)):
            for label, conf in pairs:
                s.add(PhotoTag(organization_id=org, photo_id=photo.id, result_id=result.id, label=label,
                               confidence=conf, source=source, review_state="accepted", created_at=when))
        return int(result.id)


def add_photo(org: int, *, width: int, height: int) -> None:
    """A queued photo of the given size (no result)."""
    n = next(_seq)
    with service_session() as s:
        s.add(Photo(organization_id=org, sha256=f"{n:064x}", storage_uri=f"mem://{n}", filename=f"q{n}.jpg",
                    content_type="image/jpeg", byte_size=100, width=width, height=height, status="pending"))
