"""Demo traffic outlives a PostgreSQL outage (issue 10 item 6): the database refuses every connection for a
few seconds while the stream runs in a thread; it logs one line when it fails and one per retry (no
traceback), then resumes by itself and queues the photos that arrived meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pg_databases
import pytest
from sqlalchemy import func, select

from aiconsole.admin import users
from aiconsole.demo.traffic import DemoTraffic
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _photos(org: int) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.count()).select_from(Photo).where(Photo.organization_id == org)) or 0)


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_demo_traffic_rides_out_a_database_outage(pg_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    assert pg_settings.database_url
    name = pg_settings.database_url.rsplit("/", 1)[1]
    # At 300 x, even a Sunday night in UTC sends a photo every few seconds.
    org = users.create_organization(name="Demo Photos Inc.", timezone="UTC", is_demo=True).id
    caplog.set_level(logging.INFO, logger="aiconsole.demo.traffic")
    traffic = DemoTraffic(settings=pg_settings, rate=300.0, interval_s=0.2, retry_s=0.25, max_retry_s=1.0)
    stop = threading.Event()
    runner = threading.Thread(target=traffic.run, args=(stop,), daemon=True)
    runner.start()
    try:
        _wait(lambda: _photos(org) >= 3, 60, "the first demo photos")
        with pg_databases.refusing_connections(name):
            time.sleep(4)
        _wait(lambda: any("working again" in r.getMessage() for r in caplog.records), 30, "the stream to resume")
        after = _photos(org)
        _wait(lambda: _photos(org) >= after + 3, 60, "demo photos after the outage")
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    lines = [r.getMessage() for r in caplog.records]
    down = [line for line in lines if "unavailable" in line]
    assert down and "database unavailable" in down[0] and "Retry in 0.25 s" in down[0], lines
    assert all("still failing" in line for line in down[1:]) and len(down) <= 10  # 0.25 s doubling to 1 s
    assert sum("database working again" in line for line in lines) == 1
    assert not any(r.exc_info for r in caplog.records)  # an outage gets no traceback
    assert _photos(org) == traffic.queued  # nothing lost twice, nothing queued twice
