"""Shared fixtures: a migrated SQLite database per test, and PostgreSQL / Redis when their URLs are set.

AICONSOLE_TEST_DATABASE_URL: a PostgreSQL database we may CREATE DATABASE from (CI: .../test).
AICONSOLE_TEST_REDIS_URL: a Redis we may flush a numbered database of (CI: redis://127.0.0.1:6379/15).
Tests that need them are marked `postgres` / `redis` and skip without them; .ci/run fails on such skips.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_databases import database
from sqlalchemy import Engine

from aiconsole.platform.db import dispose_engines, get_engine
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import Settings, get_settings

# The Vision/Gemini wire emulator fixtures (`emulator`, `emulator_factory`) for every test directory.
pytest_plugins = ["emulator_fixture"]

REDIS_URL = os.environ.get("AICONSOLE_TEST_REDIS_URL")


def _clear_caches() -> None:
    get_settings.cache_clear()
    dispose_engines()
    try:
        from aiconsole.platform import cache

        cache.reset_cache()
    except (ImportError, AttributeError):
        pass


def _own_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **env: str) -> None:
    """No AICONSOLE_ setting from the caller's shell (the AICONSOLE_TEST_ ones stay), `data_dir` and `env`."""
    for key in list(os.environ):
        if key.startswith("AICONSOLE_") and not key.startswith("AICONSOLE_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AICONSOLE_DATA_DIR", str(data_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _clear_caches()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to head for the whole session; each test gets a copy (migrating per test
    cost about half a second a test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "aiconsole.db"
    upgrade(f"sqlite:///{path}")
    dispose_engines()
    # Fold the write-ahead log into the file, so copying the one file copies the whole database.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _sqlite_template: Path) -> Iterator[Settings]:
    """Settings on a fresh data dir with a migrated embedded SQLite database."""
    _own_environment(monkeypatch, tmp_path / "data")
    s = get_settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template, s.data_dir / "aiconsole.db")
    yield s
    _clear_caches()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    """The engine of the `settings` database (SQLite, migrated)."""
    return get_engine(settings)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (created and dropped around the test)."""
    with database() as (_, url):
        yield url


@pytest.fixture
def pg_db_url(pg_settings: Settings) -> str:
    """The URL of the migrated database `pg_settings` points at (not `pg_url`'s empty one)."""
    assert pg_settings.database_url
    return pg_settings.database_url


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session, the template of every `pg_settings` database."""
    with database(prefix="aict_template_") as (name, url):
        upgrade(url)
        dispose_engines()  # CREATE DATABASE ... TEMPLATE needs the template free of connections
        yield name


@pytest.fixture
def pg_settings(_pg_template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointed at a fresh, migrated PostgreSQL database (a copy of the session's template)."""
    with database(template=_pg_template) as (_, url):
        _own_environment(monkeypatch, tmp_path / "data", AICONSOLE_DATABASE_URL=url)
        try:
            yield get_settings()
        finally:
            _clear_caches()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_settings(request: pytest.FixtureRequest) -> Settings:
    """Runs the test once on SQLite and once on PostgreSQL."""
    name = "settings" if request.param == "sqlite" else "pg_settings"
    return request.getfixturevalue(name)


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis URL on a flushed database."""
    if not REDIS_URL:
        pytest.skip("Redis tests need AICONSOLE_TEST_REDIS_URL")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


# --- CI guard: a skipped service test is a failure when AICONSOLE_REQUIRE_SERVICES=1 -----------------

SERVICE_MARKERS = ("postgres", "redis", "browser")
_service_passed: dict[str, int] = dict.fromkeys(SERVICE_MARKERS, 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    markers = [m for m in SERVICE_MARKERS if item.get_closest_marker(m)]
    if not markers:
        return
    if report.passed and report.when == "call":
        for m in markers:
            _service_passed[m] += 1
    if report.skipped and os.environ.get("AICONSOLE_REQUIRE_SERVICES") == "1":
        report.outcome = "failed"
        report.longrepr = f"{'/'.join(markers)} test was skipped but CI requires it: {report.longrepr}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("AICONSOLE_REQUIRE_SERVICES") != "1" or session.config.option.collectonly:
        return
    if session.config.args and any("::" in a or a.endswith(".py") for a in session.config.args):
        return  # a partial run (one file, one test) need not cover every service
    missing = [m for m, n in _service_passed.items() if n == 0]
    if missing:
        print(f"\nCI requires {', '.join(missing)} tests to run and pass; none did.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
