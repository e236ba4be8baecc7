"""Batch tests of the Testing Lab on SQLite and PostgreSQL, through the real Gemini client against the emulator:
a shadow replay completes and writes no tags or results, its cost is counted, one bad photo fails alone, a run
is cancelled mid-way, and a run whose runner died reads as interrupted and resumes to the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from worker_processes import enqueue, make_org

from aiconsole.lab import batch_runner, batch_runs
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, LabRun, LabRunItem, Photo, PhotoTag
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import PermissionDenied
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]


def _org(emulator: EmulatorServer, settings: Settings, n: int) -> tuple[int, Actor, list[int]]:
    org = make_org(provider="gemini", endpoint=emulator.url, rate_per_minute=6000)
    ids = enqueue(org, n, settings=settings)
    with service_session() as s:  # production has processed them: the shadow replay's photos
        s.execute(update(Photo).where(Photo.id.in_(ids)).values(status="completed"))
    return org, Actor.system("test", org), ids


def _counts(org: int) -> tuple[int, int]:
    with service_session() as s:
        return (int(s.scalar(select(func.count()).select_from(PhotoTag).where(PhotoTag.organization_id == org)) or 0),
                int(s.scalar(select(func.count()).select_from(AiProcessingResult)
                             .where(AiProcessingResult.organization_id == org)) or 0))


def test_shadow_replay_completes_counts_cost_writes_no_tags_and_a_bad_photo_fails_alone(
        any_settings: Settings, emulator: EmulatorServer) -> None:
    org, actor, ids = _org(emulator, any_settings, 6)
    with service_session() as s:
        s.execute(update(Photo).where(Photo.id == ids[0]).values(storage_uri="file:///nowhere/missing.png"))
    before = _counts(org)
    run = batch_runs.create_run(actor, source="shadow", n=6, provider="gemini", settings=any_settings)
    assert run.status == "running" and run.total == 6
    assert batch_runner.execute(actor, run_id=run.id, settings=any_settings) == "completed"
    done = batch_runs.get_run(actor, run_id=run.id, settings=any_settings)
    assert (done.status, done.processed, done.failed) == ("completed", 6, 1)
    assert done.cost_micros > 0
    with service_session() as s:
        items = s.scalars(select(LabRunItem).where(LabRunItem.run_id == run.id)).all()
    assert sum(i.cost_micros for i in items) == done.cost_micros
    bad = next(i for i in items if i.photo_id == ids[0])
    assert bad.status == "failed" and bad.error
    assert all(i.tag_count > 0 and i.jaccard is not None for i in items if i.status == "done")
    assert _counts(org) == before  # a shadow replay writes no tags and no results


def test_a_viewer_cannot_start_a_batch_test(any_settings: Settings, emulator: EmulatorServer) -> None:
    _org_id, actor, _ids = _org(emulator, any_settings, 1)
    viewer = Actor(user_id=None, email="v@example.com", role="viewer", organization_id=actor.organization_id)
    with pytest.raises(PermissionDenied):
        batch_runs.create_run(viewer, source="sample", n=1, provider="gemini", settings=any_settings)
    assert batch_runs.list_runs(viewer, settings=any_settings) == []


def test_a_run_is_cancelled_mid_way(any_settings: Settings,
                                    emulator_factory: Callable[..., EmulatorServer]) -> None:
    emulator = emulator_factory(latency_ms=(80, 80))
    _org_id, actor, _ids = _org(emulator, any_settings, 40)
    run = batch_runs.create_run(actor, source="sample", n=40, provider="gemini", settings=any_settings)
    thread = batch_runner.start(actor, run_id=run.id, chunk=5, settings=any_settings)
    deadline = time.monotonic() + 60
    while batch_runs.get_run(actor, run_id=run.id, settings=any_settings).processed == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    batch_runs.cancel_run(actor, run_id=run.id, settings=any_settings)
    thread.join(60)
    done = batch_runs.get_run(actor, run_id=run.id, settings=any_settings)
    assert done.status == "cancelled" and 0 < done.processed < 40


def test_an_interrupted_run_resumes_with_what_it_had_not_done(any_settings: Settings,
                                                              emulator: EmulatorServer) -> None:
    _org_id, actor, _ids = _org(emulator, any_settings, 5)
    run = batch_runs.create_run(actor, source="sample", n=5, provider="gemini", settings=any_settings)
    with service_session() as s:  # its runner died long ago
        s.execute(update(LabRun).where(LabRun.id == run.id)
                  .values(heartbeat_at=utcnow() - batch_runs.STALE_AFTER - timedelta(seconds=1)))
    assert [r.status for r in batch_runs.list_runs(actor, settings=any_settings)] == ["interrupted"]
    assert batch_runner.resume(actor, run_id=run.id, settings=any_settings) == "completed"
    done = batch_runs.get_run(actor, run_id=run.id, settings=any_settings)
    assert (done.status, done.processed, done.failed) == ("completed", 5, 0)


def test_the_budget_guard_counts_what_a_batch_test_spent(any_settings: Settings, emulator: EmulatorServer) -> None:
    from aiconsole.pipeline.budget import BudgetGuard
    from aiconsole.platform.db.models import PipelineConfig

    org, actor, _ids = _org(emulator, any_settings, 3)
    with service_session() as s:
        s.execute(update(PipelineConfig).where(PipelineConfig.organization_id == org)
                  .values(daily_budget_micros=1_000_000_000))
    before = BudgetGuard().check(org).spent_today_micros
    run = batch_runs.create_run(actor, source="sample", n=3, provider="gemini", settings=any_settings)
    batch_runner.execute(actor, run_id=run.id, settings=any_settings)
    spent = batch_runs.get_run(actor, run_id=run.id, settings=any_settings).cost_micros
    assert spent > 0
    assert BudgetGuard().check(org).spent_today_micros == before + spent
