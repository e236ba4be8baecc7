"""The demo's batch corrections (issue 11 section 7): run by the real batch code as the demo admin some days
ago, their counts agree with their items, the audit entries sit at their moment, the photos' ground truth is
the batch's, and Undo restores every row exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from aiconsole.demo.batch_history import ADMIN_EMAIL, DEMO_BATCHES
from aiconsole.demo.seed import seed_demo
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, CorrectionBatchItem, GroundTruth, PhotoTag, User
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import Settings
from aiconsole.quality import batch_rows, batch_undo, batches

NOW = datetime(2026, 3, 18, 15, 42, 7, tzinfo=UTC)


def _seeded(tmp_path: Path) -> tuple[Settings, Actor]:
    settings = Settings(data_dir=tmp_path, database_url=None, redis_url=None)
    upgrade(settings.resolved_database_url)
    org = seed_demo(settings=settings, days=12, now=NOW).organization_id
    with service_session(settings=settings) as s:
        admin = s.scalar(select(User.id).where(User.email == ADMIN_EMAIL))
    return settings, Actor(user_id=admin, email=ADMIN_EMAIL, role="admin", organization_id=org)


def _items(settings: Settings, batch_id: int) -> list[CorrectionBatchItem]:
    with service_session(settings=settings) as s:
        found = list(s.scalars(select(CorrectionBatchItem).where(CorrectionBatchItem.batch_id == batch_id)
                               .order_by(CorrectionBatchItem.id)))
        s.expunge_all()
        return found


def test_demo_batches_are_real_runs_with_true_counts_and_undo_restores_them(tmp_path: Path) -> None:
    settings, admin = _seeded(tmp_path)
    found = sorted(batches.list_batches(admin, settings=settings), key=lambda b: b.id)
    assert [(b.template, b.status, b.created_by) for b in found] == \
        [(d.template, "completed", ADMIN_EMAIL) for d in sorted(DEMO_BATCHES, key=lambda d: -d.days_ago)]
    rename, accept = found
    for batch in found:
        items = _items(settings, batch.id)
        tag_items = [i for i in items if i.action != "photo"]
        assert batch.matched == batch.processed == batch.changed == len(tag_items) > 20
        assert batch.failed == 0 and all(i.error is None for i in items)
        assert NOW - timedelta(days=10) < batch.created_at < NOW - timedelta(days=3)
        assert batch.created_at < batch.finished_at < batch.created_at + timedelta(minutes=1)  # type: ignore[operator]
        with service_session(settings=settings) as s:
            stamps = {r.action: r.created_at for r in s.execute(select(AuditLog.action, AuditLog.created_at).where(
                AuditLog.entity_type == "correction_batch", AuditLog.entity_id == str(batch.id)))}
        assert stamps == {"quality.batch.start": batch.created_at, "quality.batch.finish": batch.finished_at}

    # The rename renamed some tags and rejected the rest (their photo had 'motorcycle' already).
    outcomes = {(i.after or {})["review_state"] for i in _items(settings, rename.id) if i.action == "rename"}
    assert outcomes == {"corrected", "rejected"}
    # The accept made those labels ground truth, set by the batch.
    accepted = [i.photo_id for i in _items(settings, accept.id) if i.action == "accept"]
    with service_session(settings=settings) as s:
        truth = s.scalar(select(func.count()).where(GroundTruth.photo_id.in_(accepted),
                                                    GroundTruth.label == "black and white",
                                                    GroundTruth.source == "batch"))
    assert truth == len(set(accepted))

    items = _items(settings, rename.id)
    outcome = batch_undo.undo_batch(admin, batch_id=rename.id, settings=settings)
    assert (outcome.restored, outcome.kept) == (len(items), 0)
    with service_session(settings=settings) as s:
        for item in items:
            if item.action == "photo":
                assert batch_rows.photo_states(s, [item.photo_id])[item.photo_id] == item.before
            else:
                tag = s.execute(select(PhotoTag).where(PhotoTag.id == item.tag_id)).scalar_one()
                assert tag.label == "vehicle"
                assert batch_rows.values(s.execute(select(PhotoTag.__table__).where(PhotoTag.id == tag.id)).one(),
                                         batch_rows.DECIDED) == item.before
    assert batches.get_batch(admin, batch_id=rename.id, settings=settings).status == "undone"
