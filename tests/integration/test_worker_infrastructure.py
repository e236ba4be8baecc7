"""Infrastructure faults are not the photos' fault (issue 9 item 2): real worker processes, a real redis-server
of the test's own that is killed and restarted, a PostgreSQL database that does not exist when the worker starts.

The worker holds its photos (no attempt used, none failed), says so once per change and once per retry (no
tracebacks), reports itself unhealthy in its heartbeat (hence in system health) and resumes on its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from aiconsole.cli.main import app
from aiconsole.platform import health
from aiconsole.platform.db import dispose_engines, service_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

import pg_databases  # noqa: E402
from redis_server import RedisServer  # noqa: E402 (tests/ is on sys.path through the root conftest)
from worker_processes import (  # noqa: E402
    all_terminal,
    enqueue,
    make_org,
    results_per_photo,
    start_workers,
    status_counts,
    stop_workers,
    wait_until,
    worker_id_of,
)

pytestmark = pytest.mark.slow

# Short back-off so a test outage of a few seconds ends within a second of Redis's return.
FAULT_OPTIONS = {"infra_retry_s": 0.25, "infra_max_retry_s": 1.0}


def _attempts(org: int) -> Counter[int]:
    with service_session() as s:
        return Counter(int(a) for a in s.scalars(select(Photo.attempts).where(Photo.organization_id == org)))


def _done(org: int) -> int:
    counts = status_counts(org)
    return counts.get("completed", 0) + counts.get("needs_review", 0)


def _worker_check(settings: Settings, worker_id: str) -> tuple[str, str, dict[str, object]]:
    check = health.system_health(settings=settings).check("workers")
    [beat] = [b for b in check.details["workers"] if b["id"] == worker_id]  # type: ignore[union-attr]
    return check.status, check.message, beat


def _has_beat(settings: Settings, worker_id: str) -> bool:
    return any(b.id == worker_id for b in health.worker_beats(settings))


def _assert_holding(org: int, total: int, settings: Settings, worker_id: str) -> None:
    """Nothing failed, no attempt used by pending photos, and health says this worker is unhealthy and why."""
    counts = status_counts(org)
    assert counts.get("failed", 0) == 0 and counts.get("processing", 0) == 0, counts
    pending_attempts = _attempts(org) - Counter({1: _done(org)})
    assert set(pending_attempts) <= {0}, f"attempts used while Redis was down: {pending_attempts}"
    status, message, beat = _worker_check(settings, worker_id)
    assert status == "degraded" and beat["status"] == "unhealthy", (status, beat)
    assert "Redis" in str(beat["last_error"]) and worker_id in message and "Redis" in message, message
    cli = CliRunner().invoke(app, ["health"])  # `aiconsole health`, as an operator runs it
    [line] = [line for line in cli.output.splitlines() if line.strip().startswith("workers")]
    assert cli.exit_code == 1 and "degraded" in line and f"{worker_id}: " in line and "Redis" in line, cli.output


def test_worker_holds_its_photos_while_redis_is_down_and_resumes_by_itself(
        settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> None:
    emulator = emulator_factory(latency_ms=(20, 40))
    # 600/min: 10 photos a second, so Redis can be killed mid-run.
    org = make_org(provider="google-vision", endpoint=emulator.url, rate_per_minute=600, max_retries=3)
    ids = enqueue(org, 60, settings=settings)
    with RedisServer() as redis_server:  # not started yet: the worker begins against a dead port
        [proc] = start_workers(1, log_dir=tmp_path, env={"AICONSOLE_REDIS_URL": redis_server.url},
                               concurrency=4, batch_size=8, lease_seconds=6, poll_interval_s=0.1,
                               heartbeat_interval_s=0.5, calls={"retry_base_delay_s": 0.2, "retry_max_delay_s": 0.5},
                               **FAULT_OPTIONS)
        wid = worker_id_of(proc)
        try:
            wait_until(lambda: _has_beat(settings, wid), timeout_s=30, what="the worker's first heartbeat")
            time.sleep(4)  # long enough for the old behaviour to use up every attempt (3, 0.2-0.5 s apart)
            _assert_holding(org, len(ids), settings, wid)
            assert _done(org) == 0

            redis_server.start()
            wait_until(lambda: _done(org) >= 15, timeout_s=30, what="processing to start once Redis is up")
            assert _worker_check(settings, wid)[2]["status"] == "running"
            redis_server.kill()
            killed_at_done = _done(org)
            assert killed_at_done < len(ids), "finished before Redis could be killed mid-run"
            wait_until(lambda: _worker_check(settings, wid)[2]["status"] == "unhealthy", timeout_s=15,
                       what="the worker to notice Redis died")
            time.sleep(3)
            _assert_holding(org, len(ids), settings, wid)

            redis_server.start()
            back = time.monotonic()
            wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="every photo processed")
            resumed_s = time.monotonic() - back
            assert _worker_check(settings, wid)[2]["status"] == "running"
        finally:
            assert stop_workers([proc]) == [0]
    per_photo = results_per_photo(org)
    assert Counter(per_photo.values()) == {1: len(ids)} and set(per_photo) == set(ids)
    assert status_counts(org).get("failed", 0) == 0
    assert _attempts(org) == Counter({1: len(ids)}), "every photo took exactly one attempt"
    log = (tmp_path / f"{wid}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    faults = [line for line in log.splitlines() if "Redis" in line and "unavailable" in line]
    recoveries = [line for line in log.splitlines() if "Redis available again" in line]
    assert len(recoveries) == 2, log[-3000:]
    # One line when the fault starts, then one per retry (back-off 0.25 s doubling to 1 s): a handful per outage.
    assert 2 <= len(faults) <= 40, faults
    assert resumed_s < 30


@pytest.mark.postgres
def test_worker_waits_for_a_database_that_is_not_there_yet(
        settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = pg_databases.unique_name("aict_late_")
    url = pg_databases.url_of(name)
    [proc] = start_workers(1, log_dir=tmp_path, env={"AICONSOLE_DATABASE_URL": url}, concurrency=2, batch_size=4,
                           lease_seconds=10, poll_interval_s=0.1, **FAULT_OPTIONS)
    wid = worker_id_of(proc)
    try:
        time.sleep(4)
        assert proc.poll() is None, "the worker gave up on the missing database"
        pg_databases.create(name)
        time.sleep(1)  # the worker now finds a database without tables: it must keep waiting, not crash
        upgrade(url)
        monkeypatch.setenv("AICONSOLE_DATABASE_URL", url)
        get_settings.cache_clear()
        dispose_engines()
        emulator = emulator_factory()
        org = make_org(provider="google-vision", endpoint=emulator.url)
        ids = enqueue(org, 10, settings=get_settings())
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="the worker to start working")
        assert status_counts(org).get("failed", 0) == 0
    finally:
        assert stop_workers([proc]) == [0]
        pg_databases.drop(name)
    log = (tmp_path / f"{wid}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    waits = [line for line in log.splitlines() if "database" in line and "Retry" in line]
    # 4+ s at 0.25 s doubling to 1 s: about six retries, one line each.
    assert 3 <= len(waits) <= 20, log[-3000:]
    assert any("does not exist" in line for line in waits), waits
    assert any("migration" in line for line in waits), waits
    assert "database available again" in log, log[-3000:]


@pytest.mark.postgres
def test_database_outage_mid_run_holds_results_and_resumes(
        pg_settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> None:
    """The database refuses every connection for ~5 s mid-run: nothing fails, every photo ends with one result."""
    assert pg_settings.database_url
    name = pg_settings.database_url.rsplit("/", 1)[1]
    emulator = emulator_factory(latency_ms=(20, 40))
    org = make_org(provider="google-vision", endpoint=emulator.url, rate_per_minute=1200)
    ids = enqueue(org, 80, settings=pg_settings)
    [proc] = start_workers(1, log_dir=tmp_path, concurrency=4, batch_size=8, lease_seconds=60, poll_interval_s=0.1,
                           heartbeat_interval_s=0.5, **FAULT_OPTIONS)
    wid = worker_id_of(proc)
    try:
        wait_until(lambda: _done(org) >= 10, timeout_s=60, what="some photos done")
        with pg_databases.refusing_connections(name):
            time.sleep(5)
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=90, what="every photo processed")
    finally:
        assert stop_workers([proc]) == [0]
    per_photo = results_per_photo(org)
    assert Counter(per_photo.values()) == {1: len(ids)} and set(per_photo) == set(ids)
    assert status_counts(org).get("failed", 0) == 0 and _attempts(org) == Counter({1: len(ids)})
    log = (tmp_path / f"{wid}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "database unavailable" in log and "database available again" in log, log[-3000:]
