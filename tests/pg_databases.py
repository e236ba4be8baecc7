"""Throw-away PostgreSQL databases for tests: one way to create and drop them (conftest, the RLS roles
support and the worker fault tests all use it). Skips the test when AICONSOLE_TEST_DATABASE_URL is unset."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from aiconsole.platform.db import dispose_engines
from aiconsole.platform.settings import normalize_database_url


def admin_url() -> str:
    """The URL of the database tests may CREATE DATABASE from (normalised for psycopg 3)."""
    url = os.environ.get("AICONSOLE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL tests need AICONSOLE_TEST_DATABASE_URL")
    return normalize_database_url(url)


def url_of(name: str) -> str:
    """The URL of database `name` on the test server."""
    return admin_url().rsplit("/", 1)[0] + f"/{name}"


def unique_name(prefix: str = "aict_") -> str:
    """A database name no other test (or concurrent run) uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def create(name: str, *, template: str | None = None) -> None:
    """CREATE DATABASE `name` (a copy of `template` when given)."""
    copy_of = f' TEMPLATE "{template}"' if template else ""
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
    finally:
        admin.dispose()


def drop(name: str) -> None:
    """DROP DATABASE `name` WITH (FORCE), after closing this process's pooled connections to it."""
    dispose_engines()
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def database(*, template: str | None = None, prefix: str = "aict_") -> Iterator[tuple[str, str]]:
    """A uniquely named database (a copy of `template` when given), dropped afterwards: (name, url)."""
    name = unique_name(prefix)
    create(name, template=template)
    try:
        yield name, url_of(name)
    finally:
        drop(name)


@contextmanager
def refusing_connections(name: str) -> Iterator[None]:
    """Database `name` refuses every new connection and its open ones are cut, until the block ends."""
    dispose_engines()  # this process's pooled connections would be cut too
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                         {"d": name})
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
