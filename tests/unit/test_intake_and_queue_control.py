"""Enqueue (per-file verdicts, nothing lost) and the queue quick actions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from aiconsole.admin import users
from aiconsole.control import queue_actions as queue_control
from aiconsole.pipeline import intake
from aiconsole.pipeline.images import load_image_bytes
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, Photo, PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.providers.samples import sample_photo


@pytest.fixture
def org(any_settings: Settings) -> int:
    return users.create_organization(name="Intake Test Org").id


def _actor(org: int, role: str = "admin") -> Actor:
    return Actor(user_id=None, email=f"{role}@example.com", role=role, organization_id=org)


def _photos(org: int) -> list[Photo]:
    with service_session() as s:
        return list(s.scalars(select(Photo).where(Photo.organization_id == org).order_by(Photo.id)))


def test_each_file_gets_its_own_verdict_and_good_files_are_queued(org: int, any_settings: Settings) -> None:
    good = sample_photo("chelsea", 0)
    other = sample_photo("coffee", 1)
    report = intake.enqueue_files(_actor(org), [
        ("cat.jpg", good),
        ("empty.jpg", b""),
        ("notes.jpg", b"these are my holiday notes, not a photo\n" * 20),
        ("cut.jpg", good[: len(good) // 2]),
        ("coffee.jpg", other),
        ("again.jpg", good),
    ], priority=5, settings=any_settings)
    outcome = {v.filename: v.outcome for v in report.verdicts}
    assert outcome == {"cat.jpg": "queued", "empty.jpg": "rejected", "notes.jpg": "rejected",
                       "cut.jpg": "rejected", "coffee.jpg": "queued", "again.jpg": "duplicate"}
    messages = {v.filename: v.message for v in report.verdicts}
    assert "empty" in messages["empty.jpg"].lower() or "0 bytes" in messages["empty.jpg"]
    assert "not an image" in messages["notes.jpg"]
    assert "#" in messages["again.jpg"]  # names the photo it duplicates
    assert report.summary == "2 queued, 1 already known, 3 rejected"
    photos = _photos(org)
    assert [(p.filename, p.status, p.priority, p.source) for p in photos] == [
        ("cat.jpg", "pending", 5, "upload"), ("coffee.jpg", "pending", 5, "upload")]
    assert load_image_bytes(photos[0].storage_uri, settings=any_settings) == good
    with service_session() as s:
        audited = s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.organization_id == org, AuditLog.action == "photo.enqueue"))
    assert audited == 2


def test_the_same_bytes_may_live_in_two_organizations(org: int, any_settings: Settings) -> None:
    other = users.create_organization(name="Second Org").id
    data = sample_photo("rocket", 2)
    assert intake.enqueue_files(_actor(org), [("a.jpg", data)]).count("queued") == 1
    assert intake.enqueue_files(_actor(other), [("a.jpg", data)]).count("queued") == 1


def test_enqueue_refusals(org: int, any_settings: Settings) -> None:
    with pytest.raises(PermissionDenied):
        intake.enqueue_files(_actor(org, "viewer"), [("a.jpg", sample_photo("chelsea"))])
    with pytest.raises(ValidationFailed, match="No files"):
        intake.enqueue_files(_actor(org), [])
    with pytest.raises(ValidationFailed, match="Priority 101"):
        intake.enqueue_files(_actor(org), [("a.jpg", sample_photo("chelsea"))], priority=101)
    with pytest.raises(ValidationFailed, match="smaller batches"):
        intake.enqueue_files(_actor(org), [("a.jpg", b"x")] * (intake.MAX_FILES_PER_BATCH + 1))
    assert _photos(org) == []


def _insert(org: int, n: int, status: str, lease_delta: timedelta | None = None, tag: str = "") -> None:
    now = utcnow()
    with service_session() as s:
        for i in range(n):
            s.add(Photo(organization_id=org, sha256=f"{status}{tag}{i}".ljust(64, "0"), storage_uri="x",
                        filename=f"{status}{tag}{i}.jpg", content_type="image/jpeg", byte_size=1, width=1, height=1,
                        status=status, attempts=3, last_error="boom" if status == "failed" else None,
                        lease_owner="w1" if lease_delta is not None else None,
                        lease_expires_at=None if lease_delta is None else now + lease_delta))


def test_retry_failed_and_requeue_stuck_touch_only_what_they_should(org: int, any_settings: Settings) -> None:
    _insert(org, 3, "failed")
    _insert(org, 2, "processing", lease_delta=timedelta(minutes=-1))  # stuck
    _insert(org, 1, "processing", lease_delta=timedelta(minutes=5), tag="alive")
    actor = _actor(org, "developer")
    assert queue_control.stuck_count(organization_id=org) == 2
    assert queue_control.retry_failed(actor).affected == 3
    assert queue_control.requeue_stuck(actor).affected == 2
    assert queue_control.requeue_stuck(actor).message.startswith("No photo is stuck")
    by_status: dict[str, int] = {}
    for p in _photos(org):
        by_status[p.status] = by_status.get(p.status, 0) + 1
        if p.filename.startswith("failed"):
            assert p.attempts == 0 and p.last_error == "boom"  # fresh attempts, last error kept
    assert by_status == {"pending": 5, "processing": 1}
    with pytest.raises(PermissionDenied):
        queue_control.retry_failed(_actor(org, "analyst"))


def test_pause_resume_is_audited_and_reversible(org: int, any_settings: Settings) -> None:
    admin = _actor(org)
    with pytest.raises(ValidationFailed, match="Say why"):
        queue_control.pause(admin, reason="   ")
    with pytest.raises(PermissionDenied):
        queue_control.pause(_actor(org, "developer"), reason="no")
    assert queue_control.pause(admin, reason="budget review").affected == 1
    assert queue_control.pause(admin, reason="again").affected == 0
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None and cfg.paused and "budget review" in (cfg.pause_reason or "")
        version = cfg.version
    assert queue_control.resume(admin).affected == 1
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None and not cfg.paused and cfg.pause_reason is None and cfg.version == version + 1
        entries = list(s.scalars(select(AuditLog).where(AuditLog.organization_id == org,
                                                        AuditLog.entity_type == "pipeline_config")
                                 .order_by(AuditLog.id)))
    assert [e.action for e in entries] == ["queue.pause", "queue.resume"]
    assert entries[0].before == {"paused": False, "pause_kind": None, "pause_reason": None} and entries[0].reversible
