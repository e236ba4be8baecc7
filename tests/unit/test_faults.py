"""Infrastructure faults: the one classification, the worker's fault watch on simulated time, the database probe."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from aiconsole.pipeline.faults import FaultWatch, database_ready, probes
from aiconsole.platform.db import dispose_engines
from aiconsole.platform.errors import InfrastructureFault, ProviderError, infrastructure_fault
from aiconsole.platform.settings import Settings, get_settings


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _redis_refused() -> redis.ConnectionError:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.5)  # from_url: no retries
    try:
        client.ping()
    except redis.ConnectionError as exc:
        return exc
    raise AssertionError("something answers on port 1")


def test_connection_failures_are_infrastructure_and_the_photos_own_errors_are_not(tmp_path: Path) -> None:
    fault = infrastructure_fault(_redis_refused())
    assert fault is not None and fault.component == "Redis" and "Connection refused" in fault.message

    unopenable = create_engine(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with pytest.raises(Exception) as db_err, unopenable.connect():
        pass
    fault = infrastructure_fault(db_err.value)
    assert fault is not None and fault.component == "database" and "OperationalError" in fault.message
    assert "Background on this error" not in fault.message

    # A bad statement is a bug, not an outage, though SQLite calls it an OperationalError.
    with create_engine("sqlite://").connect() as conn:
        for bad in ("SELECT * FROM no_such_table", "SELEC 1"):
            with pytest.raises(OperationalError) as err:
                conn.execute(text(bad))
            assert infrastructure_fault(err.value) is None, bad
    assert infrastructure_fault(ProviderError("503", kind="server_error", retryable=True)) is None
    assert infrastructure_fault(ValueError("bad row")) is None
    own = InfrastructureFault("Redis", "down")
    assert infrastructure_fault(own) is own


def test_watch_logs_one_line_per_change_and_per_retry_backing_off_to_the_cap(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    changes: list[bool] = []
    watch = FaultWatch("w1", retry_s=1.0, max_retry_s=4.0, clock=clock, on_change=lambda: changes.append(True))
    caplog.set_level(logging.INFO, logger="aiconsole.pipeline.faults")
    assert not watch.down() and watch.reason() is None and watch.wait_s() == 0.0

    for _ in range(50):  # fifty call threads meeting the same outage: one line
        watch.report(InfrastructureFault("Redis", "Redis does not answer (refused)."))
    assert watch.down() and watch.down("Redis") and not watch.down("database")
    assert watch.reason() == "Redis does not answer (refused)." and len(changes) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "worker w1: Redis unavailable, holding photos (no attempt counted): Redis does not answer (refused). "
        "Retry 1 in 1 s."]

    attempts: list[float] = []

    def still_down() -> None:
        attempts.append(clock.t)
        raise _redis_refused()

    watch.retry({"Redis": still_down})
    assert attempts == []  # not due yet
    delays = []
    for _ in range(5):
        clock.t += watch.wait_s()
        watch.retry({"Redis": still_down})
        delays.append(watch.wait_s())
    assert delays == [2.0, 4.0, 4.0, 4.0, 4.0] and len(attempts) == 5
    retries = [r.getMessage() for r in caplog.records[1:]]
    assert len(retries) == 5 and retries[0].startswith("worker w1: Redis still unavailable: Redis does not answer")
    assert retries[0].endswith("Retry 2 in 2 s.") and retries[-1].endswith("Retry 6 in 4 s.")
    assert "Traceback" not in caplog.text and all(r.exc_info is None for r in caplog.records)

    clock.t += watch.wait_s()
    watch.retry({"Redis": lambda: None})
    assert not watch.down() and watch.reason() is None and len(changes) == 2
    assert caplog.records[-1].getMessage() == "worker w1: Redis available again after 19.0 s (6 retries); resuming."


def test_a_probe_that_breaks_keeps_the_component_down() -> None:
    clock = Clock()
    watch = FaultWatch("w1", retry_s=1.0, max_retry_s=1.0, clock=clock)
    watch.report(InfrastructureFault("database", "gone"))
    clock.t += 1

    def broken() -> None:
        raise KeyError("bug")

    watch.retry({"database": broken})
    assert watch.down("database") and "database check failed (KeyError" in (watch.reason() or "")


def test_database_probe_wants_the_schema_migrated(settings: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    database_ready()  # the fixture's database is migrated
    assert set(probes(None)) == {"database"} and set(probes("redis://127.0.0.1:1/0")) == {"database", "Redis"}
    with pytest.raises(InfrastructureFault, match="ConnectionError"):
        probes("redis://127.0.0.1:1/0")["Redis"]()

    monkeypatch.setenv("AICONSOLE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    get_settings.cache_clear()
    dispose_engines()
    with pytest.raises(InfrastructureFault, match=r"lacks \d+ migrations?\b") as err:
        database_ready()
    assert err.value.component == "database" and "aiconsole migrate" in str(err.value)
