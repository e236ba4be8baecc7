"""The budget guard: spend in the organization's time zone against its budgets, pauses by kind, lifted by kind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.control import queue_actions as queue_control
from aiconsole.pipeline import config_row
from aiconsole.pipeline.budget import BudgetGuard
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, AuditLog, Photo, PipelineConfig, ProcessingRollupHourly
from aiconsole.platform.settings import Settings

NOW = datetime(2025, 3, 14, 15, 20, tzinfo=UTC)


def _result(org: int, photo: int, cost: int, at: datetime) -> AiProcessingResult:
    return AiProcessingResult(organization_id=org, photo_id=photo, ai_provider="gemini", model="m",
                              status="completed", tags=[], api_cost_micros=cost, created_at=at)


@pytest.fixture
def budget_org(any_settings: Settings) -> int:
    org = users.create_organization(name=f"Budget {uuid.uuid4().hex[:6]}", timezone="UTC").id
    with service_session() as s:
        s.add(PipelineConfig(organization_id=org, daily_budget_micros=1_000_000, monthly_budget_micros=5_000_000))
        photo = Photo(organization_id=org, sha256="a" * 64, storage_uri="photos/x", filename="x.jpg",
                      content_type="image/jpeg", byte_size=1, width=1, height=1)
        s.add(photo)
        s.flush()
        # 0.40 in a whole hour earlier today (rollup) + 0.35 this hour (results): 0.75 today.
        s.add(ProcessingRollupHourly(organization_id=org, hour=datetime(2025, 3, 14, 9, tzinfo=UTC),
                                     ai_provider="gemini", results_count=4, completed_count=4, cost_micros=400_000))
        s.add(_result(org, photo.id, 350_000, NOW - timedelta(minutes=5)))
        # Yesterday counts for the month only.
        s.add(ProcessingRollupHourly(organization_id=org, hour=datetime(2025, 3, 13, 9, tzinfo=UTC),
                                     ai_provider="gemini", results_count=9, completed_count=9, cost_micros=3_000_000))
    return org


def test_budget_guard_reads_spend_and_does_not_pause_under_budget(budget_org: int) -> None:
    status = BudgetGuard().check(budget_org, now=NOW)
    assert (status.spent_today_micros, status.spent_month_micros) == (750_000, 3_750_000)
    assert status.reason is None and not status.paused_now


def test_budget_guard_pauses_once_with_the_reason_audited_as_the_worker(budget_org: int) -> None:
    with service_session() as s:
        photo_id = s.scalar(select(Photo.id).where(Photo.organization_id == budget_org))
        s.add(_result(budget_org, int(photo_id or 0), 300_000, NOW - timedelta(minutes=1)))
    status = BudgetGuard().check(budget_org, now=NOW)
    assert status.spent_today_micros == 1_050_000
    assert status.paused_now
    assert status.reason == "Daily budget of $1.00 reached ($1.05 spent today)."
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None and cfg.paused and cfg.pause_reason == status.reason
        entries = s.scalars(select(AuditLog).where(AuditLog.organization_id == budget_org,
                                                   AuditLog.action == "queue.pause")).all()
    assert [(e.actor, (e.after or {}).get("pause_reason")) for e in entries] == [("system:worker", status.reason)]
    again = BudgetGuard().check(budget_org, now=NOW)
    assert again.reached and not again.paused_now  # already paused: no second audit entry


def test_monthly_budget_pauses_too(budget_org: int) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.daily_budget_micros = None
        cfg.monthly_budget_micros = 3_500_000
    status = BudgetGuard().check(budget_org, now=NOW)
    assert status.reason == "Monthly budget of $3.50 reached ($3.75 spent this month)."


def test_guard_lifts_only_its_own_pause_once_spend_is_under_budget(budget_org: int) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.daily_budget_micros = 700_000
    guard = BudgetGuard()
    assert guard.check(budget_org, now=NOW).paused_now
    assert not guard.resume_if_clear(budget_org, now=NOW)  # still over
    # The next day: today's spend is 0 again.
    assert guard.resume_if_clear(budget_org, now=NOW + timedelta(days=1))
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None and not cfg.paused
        resumed = s.scalars(select(AuditLog.summary).where(AuditLog.organization_id == budget_org,
                                                           AuditLog.action == "queue.resume")).all()
    assert len(resumed) == 1 and "under the budgets" in resumed[0]
    # A pause someone set by hand is never lifted by the guard.
    queue_control.pause(Actor.system("test", budget_org), reason="maintenance", now=NOW)
    assert not guard.resume_if_clear(budget_org, now=NOW + timedelta(days=2))


def test_no_budgets_means_no_check(any_settings: Settings) -> None:
    org = users.create_organization(name="No budget").id
    status = BudgetGuard().check(org)
    assert status == status.__class__(org, 0, 0, None, None, None, False)


def _kind(org: int) -> tuple[bool, str | None]:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None
        return cfg.paused, cfg.pause_kind


def test_budget_pauses_carry_their_kind(budget_org: int) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.daily_budget_micros = 700_000
    assert BudgetGuard().check(budget_org, now=NOW).paused_now
    assert _kind(budget_org) == (True, config_row.DAILY_BUDGET)
    queue_control.resume(Actor.system("test", budget_org), now=NOW)
    assert _kind(budget_org) == (False, None)
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.daily_budget_micros, cfg.monthly_budget_micros = None, 3_500_000
    assert BudgetGuard().check(budget_org, now=NOW).paused_now
    assert _kind(budget_org) == (True, config_row.MONTHLY_BUDGET)


def test_the_guard_goes_by_the_pause_kind_not_the_reason_text(budget_org: int) -> None:
    guard, tomorrow = BudgetGuard(), NOW + timedelta(days=1)
    # A person's pause whose reason reads like the guard's own is still a person's pause.
    queue_control.pause(Actor.system("test", budget_org), reason="x", now=NOW)
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.pause_reason = "Daily budget of $1.00 reached ($1.05 spent today)."
    assert not guard.resume_if_clear(budget_org, now=tomorrow)
    assert _kind(budget_org) == (True, config_row.MANUAL)
    # The guard's own pause is lifted whatever its text says.
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.pause_kind, cfg.pause_reason = config_row.DAILY_BUDGET, "Paused: budget"
    assert guard.resume_if_clear(budget_org, now=tomorrow)
    assert _kind(budget_org) == (False, None)


def test_a_circuit_pause_is_not_the_guards_to_lift(budget_org: int) -> None:
    assert config_row.auto_pause_org(budget_org, kind=config_row.CIRCUIT_OPEN, reason="Provider circuit open: x")
    assert not config_row.auto_pause_org(budget_org, kind=config_row.CIRCUIT_OPEN, reason="again")  # paused already
    assert not BudgetGuard().resume_if_clear(budget_org, now=NOW + timedelta(days=1))
    assert _kind(budget_org) == (True, config_row.CIRCUIT_OPEN)



def _resumable(org: int) -> list[str]:
    with service_session() as s:
        return [kind for o, kind, paused_at in config_row.auto_resumable(s) if o == org and paused_at is not None]


@pytest.mark.parametrize(("kind", "resumable"), [
    (config_row.DAILY_BUDGET, True), (config_row.MONTHLY_BUDGET, True), (config_row.CIRCUIT_OPEN, True),
    (config_row.PROVIDER_DISABLED, False), (config_row.MANUAL, False),
])
def test_the_worker_looks_only_at_the_pauses_it_may_lift(budget_org: int, kind: str, resumable: bool) -> None:
    assert _resumable(budget_org) == []
    assert config_row.auto_pause_org(budget_org, kind=kind, reason="Daily budget of $1.00 reached")
    assert _resumable(budget_org) == ([kind] if resumable else [])
