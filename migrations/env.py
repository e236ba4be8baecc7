"""Alembic environment: the database URL comes from aiconsole's Settings (or a connection handed in)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy import Connection, text

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.models import Base
from aiconsole.platform.migrate import render_item
from aiconsole.platform.settings import get_settings

config = context.config
target_metadata = Base.metadata

# The setting revisions 0002-0005's policies let through (see _run).
LEGACY_BYPASS_SETTING = "app.bypass_rls"
# pg_advisory_xact_lock key ("aicons" in ASCII): one migration run at a time per database.
MIGRATION_LOCK_KEY = 0x6169636F6E73


def _url() -> str:
    # Migrations are service work: they run as the service role, which owns the tables.
    return config.attributes.get("url") or get_settings().resolved_service_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        with _sqlite_foreign_keys_off(connection):
            _migrate(connection)
    else:
        _migrate(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while the migrations run, checked once they are done.

    A batch migration copies a table, drops the old one and renames the copy. With foreign keys on, that
    DROP deletes the old rows first, so every ON DELETE SET NULL child loses its link (0004 nulled
    photo_tags.result_id and corrections.tag_id) and CASCADE children vanish. SQLite ignores the pragma
    inside a transaction, so it is set on the driver's connection before Alembic begins one (a statement
    through `connection` would begin a transaction Alembic never commits).
    """
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"Migration left {len(broken)} rows with dangling foreign keys: {broken[:5]}")
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _migrate(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=not postgres,
        compare_type=True,
        render_item=render_item,
    )
    # Nothing may run on the connection before begin_transaction(): SQLAlchemy would autobegin a
    # transaction that Alembic then treats as the caller's and never commits.
    with context.begin_transaction():
        if postgres:
            # Workers on several machines may all run `upgrade` at start-up; the second waits here,
            # then reads the version table after the first committed and finds nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            # Revisions 0002-0005 key their policies on this setting, so a data migration among them run as
            # the tables' owning role would otherwise see no rows. From 0006 on no policy reads it: the
            # policies let the owner through by who it is. Transaction-local, so nothing keeps it afterwards.
            connection.execute(text("SELECT set_config(:name, 'on', true)"), {"name": LEGACY_BYPASS_SETTING})
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
