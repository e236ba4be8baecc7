"""Shared fixtures: a migrated SQLite database per test, and PostgreSQL / Redis when their URLs are set.

AICONSOLE_TEST_DATABASE_URL: a PostgreSQL database we may CREATE DATABASE from (CI: .../test).
AICONSOLE_TEST_REDIS_URL: a Redis we may flush a numbered database of (CI: redis://127.0.0.1:6379/15).
Tests that need them are marked `postgres` / `redis` and skip without them; .ci/run fails on such skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from aiconsole.config import Settings, get_settings, normalize_database_url
from aiconsole.db import dispose_engines, get_engine
from aiconsole.migrate import upgrade

PG_URL = os.environ.get("AICONSOLE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("AICONSOLE_TEST_REDIS_URL")


def _clear_caches() -> None:
    get_settings.cache_clear()
    dispose_engines()
    try:
        from aiconsole import cache

        cache.reset_cache()
    except (ImportError, AttributeError):
        pass


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on a fresh data dir with a migrated embedded SQLite database."""
    for key in list(os.environ):
        if key.startswith("AICONSOLE_") and not key.startswith("AICONSOLE_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AICONSOLE_DATA_DIR", str(tmp_path / "data"))
    _clear_caches()
    s = get_settings()
    upgrade(s.resolved_database_url)
    yield s
    _clear_caches()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    """The engine of the `settings` database (SQLite, migrated)."""
    return get_engine(settings)


def _pg_admin_url() -> str:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need AICONSOLE_TEST_DATABASE_URL")
    return normalize_database_url(PG_URL)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (created and dropped around the test)."""
    admin_url = _pg_admin_url()
    name = f"aict_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointed at a fresh, migrated PostgreSQL database."""
    for key in list(os.environ):
        if key.startswith("AICONSOLE_") and not key.startswith("AICONSOLE_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AICONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AICONSOLE_DATABASE_URL", pg_url)
    _clear_caches()
    s = get_settings()
    upgrade(s.resolved_database_url)
    yield s
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
