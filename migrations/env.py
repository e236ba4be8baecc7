"""Alembic environment: the database URL comes from aiconsole's Settings (or a connection handed in)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import aiconsole.db.types  # noqa: F401  (rendered types resolve in autogenerate)
from aiconsole.config import get_settings
from aiconsole.db.engine import make_engine
from aiconsole.db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("url") or get_settings().resolved_database_url


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


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    if connection.dialect.name == "postgresql":
        # Migrations work across organizations: let RLS policies through for this transaction.
        connection.execute(text("SELECT set_config('app.bypass_rls', 'on', false)"))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
