"""AICONSOLE_SERVICE_DATABASE_URL: service work's connection, the single URL when unset, refused alone."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aiconsole.platform.db import get_engine, get_service_engine
from aiconsole.platform.health import check_database
from aiconsole.platform.settings import Settings


def test_unset_means_one_url_for_both(settings: Settings) -> None:
    assert settings.resolved_service_database_url == settings.resolved_database_url
    assert not settings.separate_service_role
    assert get_service_engine(settings) is get_engine(settings)


def test_set_it_is_normalized_and_separate() -> None:
    s = Settings(database_url="postgresql://console@db/aiconsole",
                 service_database_url="postgres://service@db/aiconsole")
    assert s.resolved_database_url == "postgresql+psycopg://console@db/aiconsole"
    assert s.resolved_service_database_url == "postgresql+psycopg://service@db/aiconsole"
    assert s.separate_service_role


def test_a_service_url_beside_the_embedded_sqlite_is_refused() -> None:
    with pytest.raises(ValidationError, match="AICONSOLE_DATABASE_URL is not"):
        Settings(service_database_url="postgresql://service@db/aiconsole")


def test_sqlite_health_says_there_is_no_row_level_security(settings: Settings) -> None:
    check = check_database(settings)
    assert check.status == "healthy"
    assert check.details["rls_mode"] == "none"
    assert "SQLite has no row-level security" in check.message
