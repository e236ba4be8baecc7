"""System health against real parts: SQLite/PostgreSQL, Redis, an unreachable server, an old schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiconsole.platform import health
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import Worker
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import Settings


def _worker(settings: Settings, wid: str, *, age_seconds: float, status: str = "running") -> None:
    beat = datetime.now(UTC) - timedelta(seconds=age_seconds)
    with service_session(engine=get_engine(settings)) as s:
        s.add(Worker(id=wid, hostname="box-1", pid=4242, concurrency=8, status=status, processed_count=17,
                     started_at=beat - timedelta(hours=1), last_heartbeat_at=beat))


def test_no_worker_is_degraded_and_a_fresh_heartbeat_is_healthy(any_settings: Settings) -> None:
    report = health.system_health(settings=any_settings)
    assert report.status == "degraded"
    assert report.check("database").status == "healthy"
    assert report.check("database").details["pending_migrations"] == []
    assert report.check("database").details["dialect"] == get_engine(any_settings).dialect.name
    assert report.check("redis").message == "Redis not configured, in-process cache."
    workers = report.check("workers")
    assert (workers.status, workers.details["live"]) == ("degraded", 0)
    assert workers.message.startswith("No worker running")

    _worker(any_settings, "w-fresh", age_seconds=2)
    report = health.system_health(settings=any_settings)
    assert report.status == "healthy", report.to_dict()
    beat = report.check("workers").details["workers"][0]
    assert beat["id"] == "w-fresh" and not beat["stale"] and 2 <= beat["seconds_since_heartbeat"] < 30
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["status"] == "healthy"
    assert [c["name"] for c in doc["checks"]] == ["database", "redis", "workers"]


def test_stale_workers_do_not_count_as_running(settings: Settings) -> None:
    _worker(settings, "w-old", age_seconds=settings.worker_stale_seconds + 30)
    _worker(settings, "w-stopped", age_seconds=1, status="stopped")
    check = health.system_health(settings=settings).check("workers")
    assert check.status == "degraded"
    assert (check.details["live"], check.details["stale"]) == (0, 1)
    assert "1 worker stopped reporting, the latest 90 s ago (stale after 60 s)" in check.message
    _worker(settings, "w-new", age_seconds=1)
    check = health.system_health(settings=settings).check("workers")
    assert check.status == "healthy"
    assert "1 worker running" in check.message and "1 other silent" in check.message


def test_a_worker_reporting_itself_unhealthy_degrades_health_with_its_reason(any_settings: Settings) -> None:
    from aiconsole.pipeline import queue

    _worker(any_settings, "w-ok", age_seconds=1)
    queue.heartbeat(worker_id="w-held", hostname="box-2", pid=7, concurrency=4, processed=3, status="unhealthy",
                    last_error="Redis does not answer (ConnectionError: redis://:pw@10.0.0.9:6379 refused).")
    check = health.system_health(settings=any_settings).check("workers")
    assert check.status == "degraded" and (check.details["live"], check.details["unhealthy"]) == (2, 1)
    assert check.message.startswith("1 of 2 workers unhealthy, holding their photos until it clears: w-held: "
                                    "Redis does not answer"), check.message
    assert "pw@" not in check.message and "redis://:***@10.0.0.9" in check.message
    [held] = [w for w in check.details["workers"] if w["id"] == "w-held"]
    assert held["status"] == "unhealthy" and "Redis" in held["last_error"]

    # Back to work: the next heartbeat clears the reason, and health with it.
    queue.heartbeat(worker_id="w-held", hostname="box-2", pid=7, concurrency=4, processed=9)
    check = health.system_health(settings=any_settings).check("workers")
    assert check.status == "healthy" and check.details["unhealthy"] == 0
    assert [w["last_error"] for w in check.details["workers"]] == [None, None]


def test_unreachable_database_is_down_and_the_password_never_shows(settings: Settings) -> None:
    broken = settings.model_copy(update={"database_url": "postgresql+psycopg://aic:s3cr3t-pw@127.0.0.1:1/nowhere",
                                         "redis_url": "redis://:r3d1s-pw@127.0.0.1:1/0"})
    report = health.system_health(settings=broken)
    assert report.status == "down"
    db = report.check("database")
    assert db.status == "down" and db.error and "OperationalError" in db.error
    assert report.check("redis").status == "down" and "Connection" in (report.check("redis").error or "")
    assert report.check("workers").status == "down"
    dumped = json.dumps(report.to_dict())
    assert "s3cr3t-pw" not in dumped and "r3d1s-pw" not in dumped


def test_unapplied_migrations_are_degraded(tmp_path: Path, settings: Settings) -> None:
    old = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'old.db'}"})
    upgrade(old.resolved_database_url, "0001")
    db = health.system_health(settings=old).check("database")
    assert db.status == "degraded"
    assert db.details["pending_migrations"] and "0001" not in db.details["pending_migrations"]
    assert "aiconsole migrate" in db.message


@pytest.mark.redis
def test_configured_redis_is_pinged(settings: Settings, redis_url: str) -> None:
    check = health.system_health(settings=settings.model_copy(update={"redis_url": redis_url})).check("redis")
    assert check.status == "healthy" and check.details["configured"] is True
    assert check.details["ping_ms"] >= 0


def test_mask_secrets() -> None:
    assert health.mask_secrets("connect to postgresql://bob:pa:ss@db:5432/x failed") == (
        "connect to postgresql://bob:***@db:5432/x failed")
    assert health.mask_secrets("redis://:pw@host/0 and host=db password=hunter2 user=x") == (
        "redis://:***@host/0 and host=db password=*** user=x")
    assert health.mask_secrets("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


@pytest.mark.postgres
def test_postgres_health_reports_row_level_security(pg_settings: Settings) -> None:
    from aiconsole.platform.health import check_database

    check = check_database(pg_settings)
    assert check.details["tables_without_rls"] == []
    # The test suite connects as a superuser, which PostgreSQL lets past every policy: say so.
    assert check.details["role_bypasses_rls"] is True
    assert "bypasses row-level security" in check.message
