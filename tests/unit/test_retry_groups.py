"""Retry of one failure reason and the Revert of a retry (issue 10 item 3), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from aiconsole.admin import reverts, users
from aiconsole.control import queue_actions as queue_control
from aiconsole.live import status as live_status
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings


@pytest.fixture
def org(any_settings: Settings) -> int:
    return users.create_organization(name="Retry Groups Org").id


def _actor(org: int, role: str = "admin") -> Actor:
    return Actor(user_id=None, email=f"{role}@example.com", role=role, organization_id=org)


def fail(org: int, name: str, error_kind: str, *, minutes_ago: int, attempts: int = 3) -> int:
    """A photo that failed `minutes_ago` with a failed result of `error_kind`; its id."""
    at = utcnow() - timedelta(minutes=minutes_ago)
    with service_session() as s:
        photo = Photo(organization_id=org, sha256=name.ljust(64, "0"), storage_uri="x", filename=f"{name}.jpg",
                      content_type="image/jpeg", byte_size=1, width=1, height=1, status="failed",
                      attempts=attempts, last_error=f"{error_kind}: boom", created_at=at, updated_at=at,
                      completed_at=at)
        s.add(photo)
        s.flush()
        s.add(AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider="gemini", model="m",
                                 status="failed", error_kind=error_kind, error=f"{name} {error_kind}",
                                 created_at=at))
        return int(photo.id)


def _states(org: int) -> dict[str, tuple[str, int]]:
    with service_session() as s:
        return {p.filename.removesuffix(".jpg"): (p.status, p.attempts)
                for p in s.scalars(select(Photo).where(Photo.organization_id == org))}


def test_the_snapshot_groups_failures_newest_first(org: int) -> None:
    fail(org, "key1", "auth", minutes_ago=30)
    fail(org, "key2", "auth", minutes_ago=20)
    fail(org, "slow1", "timeout", minutes_ago=5)
    snap = live_status.live_snapshot(organization_id=org, use_cache=False)
    assert [(g.reason_kind, g.count) for g in snap.failures] == [("timeout", 1), ("auth", 2)]
    assert sum(g.count for g in snap.failures) == snap.status.failed == 3


def test_retry_one_reason_moves_only_it_audited_and_revert_puts_back_what_still_waits(org: int) -> None:
    fail(org, "key1", "auth", minutes_ago=30, attempts=3)
    fail(org, "key2", "auth", minutes_ago=20, attempts=1)
    fail(org, "slow1", "timeout", minutes_ago=5)
    admin = _actor(org)
    report = queue_control.retry_failed_group(_actor(org, "developer"), reason_kind="auth")
    assert report.affected == 2 and report.message.startswith("Requeued 2 failed photos. They had failed because ")
    assert _states(org) == {"key1": ("pending", 0), "key2": ("pending", 0), "slow1": ("failed", 3)}
    entry = audit.list_entries(admin, entity_type="photos")[0]
    assert entry.action == "queue.retry_failed" and entry.reversible
    assert entry.before is not None and entry.before["reason_kind"] == "auth" and entry.before["failed"] == 2

    with service_session() as s:  # a worker picked key2 up meanwhile
        s.execute(Photo.__table__.update().where(Photo.filename == "key2.jpg", Photo.organization_id == org)
                  .values(status="completed", attempts=1))
    result = reverts.revert(admin, audit_id=entry.id)
    assert _states(org) == {"key1": ("failed", 3), "key2": ("completed", 1), "slow1": ("failed", 3)}
    revert_entry = audit.list_entries(admin, entity_type="photos")[0]
    assert revert_entry.id == result.revert_id
    assert revert_entry.summary == (f"Reverted entry #{entry.id}: 1 photo back to failed "
                                    "(1 photo already picked up keeps its new outcome)")
    with pytest.raises(ConflictError, match="already reverted"):
        reverts.revert(admin, audit_id=entry.id)


def test_a_retry_whose_photos_were_all_picked_up_cannot_be_reverted(org: int) -> None:
    fail(org, "slow1", "timeout", minutes_ago=5)
    admin = _actor(org)
    queue_control.retry_failed(admin)
    entry = audit.list_entries(admin, entity_type="photos")[0]
    with service_session() as s:
        s.execute(Photo.__table__.update().where(Photo.organization_id == org).values(status="processing",
                                                                                       attempts=1))
    with pytest.raises(ConflictError, match="picked up by a worker since"):
        reverts.revert(admin, audit_id=entry.id)
    assert _states(org) == {"slow1": ("processing", 1)}


def test_group_retry_is_refused_without_the_permission_or_with_an_unknown_reason(org: int) -> None:
    fail(org, "key1", "auth", minutes_ago=30)
    for role in ("viewer", "analyst", "reviewer"):
        with pytest.raises(PermissionDenied):
            queue_control.retry_failed_group(_actor(org, role), reason_kind="auth")
    with pytest.raises(ValidationFailed, match="no failure reason"):
        queue_control.retry_failed_group(_actor(org), reason_kind="nonsense")
    assert _states(org) == {"key1": ("failed", 3)}
    assert queue_control.retry_failed_group(_actor(org), reason_kind="timeout").affected == 0
