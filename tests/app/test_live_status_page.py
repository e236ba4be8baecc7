"""Live Status through AppTest: cards and charts render, quick actions confirm, act, audit and check roles."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from aiconsole.live import status as live_status
from aiconsole.platform import audit
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProviderHealth, AuditLog, Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

CARD_LABELS = {"Processed today", "Pending", "Processing", "Failed", "Needs review", "Avg confidence today",
               "Error rate (last hour)", "Spend today", "Month to date"}


def _org(at) -> int:  # type: ignore[no-untyped-def]
    return at.session_state[ACTOR_KEY].organization_id


def test_cards_charts_and_health_render(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    labels = {m.label for m in at.metric}
    assert labels >= CARD_LABELS
    pending = next(m for m in at.metric if m.label == "Pending")
    snap = live_status.status_cards(organization_id=_org(at))
    assert pending.value == f"{snap.pending:,}"
    charts = at.get("plotly_chart")
    assert len(charts) >= 4
    assert "System health" in [s.value for s in at.subheader]


def test_system_health_names_a_worker_holding_its_photos(app_as) -> None:  # type: ignore[no-untyped-def]
    import streamlit as st

    from aiconsole.pipeline import queue

    queue.heartbeat(worker_id="w-held", hostname="box", pid=7, concurrency=4, processed=0, status="unhealthy",
                    last_error="Redis does not answer (ConnectionError: refused).")
    st.cache_data.clear()  # the page caches system health for 10 s; an earlier test of this module filled it
    at = app_as("viewer")
    captions = [shown(c.value) for c in at.caption]
    assert any(c.startswith("1 of 1 worker unhealthy") and "w-held: Redis does not answer" in c
               for c in captions), captions


def test_viewer_cannot_act(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    for key in ("pause", "retry_failed", "requeue_stuck", "health_check"):
        assert at.button(key=key).disabled, key


def test_pause_asks_for_a_reason_then_pauses_and_resumes(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    org = _org(at)
    at.button(key="pause").click().run()
    assert any("photos in flight finish" in shown(w.value) for w in at.warning)
    at.button(key="pause_confirm").click().run()  # no reason given
    assert any("Say why processing is paused" in shown(e.value) for e in at.error)
    assert not live_status.status_cards(organization_id=org).paused

    at.button(key="pause").click().run()
    at.text_input(key="pause_reason").input("<b>provider maintenance</b>")
    at.button(key="pause_confirm").click().run()
    assert not at.exception
    cards = live_status.status_cards(organization_id=org)
    assert cards.paused and "provider maintenance" in (cards.pause_reason or "")
    assert any("paused" in shown(e.value).lower() for e in at.error)  # the banner
    assert not any("<b>" in m.value for m in at.markdown)  # rendered inert
    entries = audit.list_entries(at.session_state[ACTOR_KEY], entity_type="pipeline_config")
    assert entries[0].action == "queue.pause" and entries[0].actor.startswith("admin")

    at.button(key="resume").click().run()
    at.button(key="resume_cancel").click().run()
    assert live_status.status_cards(organization_id=org).paused
    at.button(key="resume").click().run()
    at.button(key="resume_confirm").click().run()
    assert not live_status.status_cards(organization_id=org).paused
    assert any("resumed" in shown(s.value).lower() for s in at.success)


def test_retry_failed_and_requeue_stuck(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("developer")
    org = _org(at)
    with service_session() as s:
        failed = s.scalar(select(func.count()).select_from(Photo).where(
            Photo.organization_id == org, Photo.status == "failed"))
        s.execute(update(Photo).where(Photo.organization_id == org, Photo.status == "processing")
                  .values(lease_expires_at=utcnow() - timedelta(minutes=5)))
        stuck = s.scalar(select(func.count()).select_from(Photo).where(
            Photo.organization_id == org, Photo.status == "processing"))
    assert failed and stuck, "the demo seeds failed and processing photos"
    at.run()
    at.button(key="retry_failed").click().run()
    at.button(key="retry_failed_confirm").click().run()
    assert any(f"Requeued {failed} failed" in shown(s.value) for s in at.success)
    at.button(key="requeue_stuck").click().run()
    at.button(key="requeue_stuck_confirm").click().run()
    assert any(f"Requeued {stuck} stuck" in shown(s.value) for s in at.success)
    with service_session() as s:
        left = s.scalar(select(func.count()).select_from(Photo).where(
            Photo.organization_id == org, Photo.status.in_(("failed", "processing"))))
        actions = set(s.scalars(select(AuditLog.action).where(AuditLog.organization_id == org)))
    assert left == 0
    assert {"queue.retry_failed", "queue.requeue_stuck"} <= actions


def test_health_check_records_provider_health(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    org = _org(at)
    with service_session() as s:
        before = s.scalar(select(func.count()).select_from(AiProviderHealth)
                          .where(AiProviderHealth.organization_id == org))
    at.button(key="health_check").click().run()
    at.button(key="health_check_confirm").click().run()
    assert not at.exception
    messages = [shown(m.value) for m in at.success] + [shown(m.value) for m in at.error]
    # No worker runs in this test, so the system is degraded and the message says why.
    assert any(m.startswith("System degraded") and "worker" in m for m in messages), messages
    with service_session() as s:
        after = s.scalar(select(func.count()).select_from(AiProviderHealth)
                         .where(AiProviderHealth.organization_id == org))
    assert after > before


def test_auto_refresh_controls(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("analyst")
    assert at.toggle(key="live_auto").value is True
    at.toggle(key="live_auto").set_value(False).run()
    assert not at.exception
    assert at.number_input(key="live_every").disabled
    assert any("paused" in shown(c.value) for c in at.caption)
