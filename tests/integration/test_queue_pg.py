"""The queue under real PostgreSQL concurrency: SKIP LOCKED never waits on held rows, the reaper and a
recording worker never both win a photo, two reapers fail a photo once, a process killed mid-batch loses
nothing, 4 processes record every photo exactly once, and all of it beside a console role row-level security
binds."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from aiconsole.admin import users
from aiconsole.pipeline import queue, reaper
from aiconsole.pipeline.recording import record_batch
from aiconsole.platform.db import dispose_engines, get_engine, service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, PhotoTag
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.settings import Settings, get_settings

pytestmark = pytest.mark.postgres

UNIT = Path(__file__).resolve().parent.parent / "unit"
ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    # Shared helpers live with the unit tests; load them by path (tests/ is not a package).
    spec = importlib.util.spec_from_file_location(f"{name}_helpers", UNIT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


qt = _load("test_queue")
rt = _load("test_recording")
add_photos, photo, set_config = qt.add_photos, qt.photo, qt.set_config


@pytest.fixture
def org(pg_settings: Settings) -> int:
    return users.create_organization(name="Queue PG Org").id


def _results(org: int) -> dict[int, int]:
    with service_session() as s:
        return {pid: n for pid, n in s.execute(
            select(AiProcessingResult.photo_id, func.count()).where(AiProcessingResult.organization_id == org)
            .group_by(AiProcessingResult.photo_id))}


def test_a_claim_skips_rows_another_transaction_holds_without_waiting(org: int, pg_db_url: str) -> None:
    ids = add_photos(org, 8, start=utcnow() - timedelta(minutes=1))
    holder = create_engine(pg_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT id FROM photos WHERE id = ANY(:ids) FOR UPDATE"), {"ids": ids[:3]})
            started = time.monotonic()
            got = queue.claim_batch(worker_id="w", limit=4, lease_seconds=60)
            assert time.monotonic() - started < 2.0
            assert [c.id for c in got] == ids[3:7]  # the next ones in order, the held three untouched
            conn.rollback()
    finally:
        holder.dispose()
    assert [c.id for c in queue.claim_batch(worker_id="w", limit=10, lease_seconds=60)] == ids[:3] + ids[7:]


def test_reaper_and_recording_worker_never_both_win_a_photo(org: int) -> None:
    set_config(org, max_retries=100)  # photos requeued in one round are claimed again in the next
    for round_ in range(6):
        add_photos(org, 40, tag=f"r{round_}", start=utcnow() - timedelta(minutes=1))
        now = utcnow()
        batch = queue.claim_batch(worker_id="slow", limit=40, lease_seconds=1, now=now)
        outcomes = [rt.outcome(c, rt.result([("cat", 0.9)], cost=1)) for c in batch]
        barrier = threading.Barrier(2)
        reports: dict[str, Any] = {}

        def reap(reports: dict[str, Any] = reports, barrier: threading.Barrier = barrier,
                 now: Any = now) -> None:
            barrier.wait()
            reports["reap"] = reaper.reap_expired(now=now + timedelta(seconds=5))

        def record(reports: dict[str, Any] = reports, barrier: threading.Barrier = barrier,
                   outcomes: list[Any] = outcomes) -> None:
            barrier.wait()
            reports["record"] = record_batch(worker_id="slow", outcomes=outcomes)

        threads = [threading.Thread(target=reap), threading.Thread(target=record)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        reaped, recorded = reports["reap"], reports["record"]
        print(f"round {round_}: reaper requeued {reaped.requeued}, worker recorded {recorded.recorded}")
        assert reaped.failed == 0
        assert reaped.requeued + recorded.recorded == 40, (round_, reaped, recorded)
        assert recorded.lost_lease == reaped.requeued
        results = _results(org)
        for c in batch:
            status = photo(c.id).status
            assert (status == "completed") == (c.id in results), (round_, c.id, status)
            assert status in ("completed", "pending")
    assert set(_results(org).values()) <= {1}


def test_two_reapers_at_once_fail_each_photo_once(org: int) -> None:
    set_config(org, max_retries=1)
    add_photos(org, 300, start=utcnow() - timedelta(minutes=1))
    now = utcnow()
    queue.claim_batch(worker_id="dead", limit=300, lease_seconds=1, now=now)
    barrier = threading.Barrier(3)
    reports: list[reaper.ReapReport] = []

    def reap() -> None:
        barrier.wait()
        reports.append(reaper.reap_expired(now=now + timedelta(seconds=5)))

    threads = [threading.Thread(target=reap) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r.failed for r in reports) == 300 and sum(r.requeued for r in reports) == 0
    results = _results(org)
    assert len(results) == 300 and set(results.values()) == {1}
    roll = rt.rollup_rows(org)
    assert sum(r["failed_count"] for r in roll.values()) == 300


KILLED_SCRIPT = """
import os, signal, sys
from aiconsole.pipeline import queue
batch = queue.claim_batch(worker_id="doomed", limit=int(sys.argv[1]), lease_seconds=int(sys.argv[2]))
print(len(batch), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies holding its leases, like kill -9 mid-batch
"""


def test_photos_of_a_process_killed_mid_batch_are_recorded_once_after_its_lease_expires(
        org: int, pg_settings: Settings) -> None:
    add_photos(org, 300, start=utcnow() - timedelta(minutes=5), step_s=0.001)
    env = {**os.environ, "AICONSOLE_DATA_DIR": str(pg_settings.data_dir),
           "AICONSOLE_DATABASE_URL": str(pg_settings.database_url)}
    killed = subprocess.run([sys.executable, "-c", KILLED_SCRIPT, "50", "2"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL and killed.stdout.strip() == "50"
    totals = qt.run_processes(pg_settings, rt.PIPELINE_SCRIPT, 2, limit=20)
    assert sum(t["recorded"] for t in totals) == 250  # the dead worker's 50 are still leased
    time.sleep(2.1)
    assert reaper.reap_expired().requeued == 50
    totals = qt.run_processes(pg_settings, rt.PIPELINE_SCRIPT, 2, limit=20)
    assert sum(t["recorded"] for t in totals) == 50
    attempts = rt.check_every_photo_has_one_result(org, 300)
    assert sum(1 for a in attempts.values() if a > 1) >= 50  # the dead worker's claim counted as an attempt


def test_four_processes_record_two_thousand_photos_exactly_once(org: int, pg_settings: Settings) -> None:
    add_photos(org, 2000, start=utcnow() - timedelta(minutes=5), step_s=0.001)
    totals = qt.run_processes(pg_settings, rt.PIPELINE_SCRIPT, 4, limit=25)
    assert sum(t["recorded"] for t in totals) == 2000
    assert sum(t["lost"] for t in totals) == 0
    assert sum(1 for t in totals if t["recorded"]) >= 3
    attempts = rt.check_every_photo_has_one_result(org, 2000)
    assert attempts == {pid: 2 if pid % 7 == 0 else 1 for pid in attempts}


@pytest.fixture
def app_role_url(pg_db_url: str) -> Iterator[str]:
    """The test database's URL as a LOGIN role without superuser or BYPASSRLS: row-level security binds it."""
    role = f"aict_q_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    user = pg_db_url.split("://", 1)[1].split("@", 1)[0]
    try:
        yield pg_db_url.replace(f"://{user}@", f"://{role}@")
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_the_whole_data_plane_works_beside_a_console_role_bound_by_row_level_security(
        org: int, app_role_url: str, pg_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_config(org, max_retries=1)
    other = users.create_organization(name="Other PG Org").id
    add_photos(org, 6, start=utcnow() - timedelta(minutes=1))
    add_photos(other, 2, tag="o", start=utcnow() - timedelta(minutes=1))
    # User sessions connect as the bound role; service work (claim, record, reap) as the tables' owner.
    monkeypatch.setenv("AICONSOLE_DATABASE_URL", app_role_url)
    monkeypatch.setenv("AICONSOLE_SERVICE_DATABASE_URL", pg_db_url)
    get_settings.cache_clear()
    dispose_engines()
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT rolbypassrls OR rolsuper FROM pg_roles "
                                 "WHERE rolname = current_user")).scalar_one() is False
    now = utcnow()
    batch = queue.claim_batch(worker_id="app", limit=10, lease_seconds=30, now=now)
    assert len(batch) == 8 and {c.organization_id for c in batch} == {org, other}
    queue.heartbeat(worker_id="app", hostname="h", pid=1, concurrency=4, processed=0)
    report = record_batch(worker_id="app", now=now, outcomes=[
        rt.outcome(c, rt.result([("cat", 0.9), ("dog", 0.5)], cost=10)) for c in batch[:7]])
    assert (report.recorded, report.cost_micros) == (7, 70)
    assert reaper.reap_expired(now=now + timedelta(seconds=31)).failed == 1
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(AiProcessingResult)) == 8
        assert s.scalar(select(func.count()).select_from(PhotoTag)) == 14
        assert s.scalar(select(func.count()).select_from(Photo).where(Photo.status == "needs_review")) == 7
