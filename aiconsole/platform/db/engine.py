"""Engines and sessions: SQLite pragmas, the per-transaction organization setting that PostgreSQL
row-level security keys on, and the two roles: user sessions connect as the console's role, which the
policies confine to that one organization; service work connects as the service role, which the
policies let through by who it is (the tables' owner, or BYPASSRLS), never by a setting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from aiconsole.platform.settings import Settings, get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()

ORG_SETTING = "app.current_organization_id"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the console read while a worker writes; busy_timeout waits out short write locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A new engine for `url` with aiconsole's connection setup."""
    if url.startswith("sqlite"):
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            kwargs.setdefault("poolclass", NullPool)
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection back in the pool within this many seconds is not pinged at checkout. pool_pre_ping pings
# every checkout: a round trip per transaction, a tenth of a busy worker's time. A connection that dies
# while busy fails its statement, which the worker's claim and record loops already retry.
PING_AFTER_IDLE_S = 2.0


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    last = record.info.get("checked_in_at")
    if last is not None and time.monotonic() - last < PING_AFTER_IDLE_S:
        return
    try:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("SELECT 1")
        finally:
            cur.close()
    except Exception as exc:
        # The pool discards this connection and checks out (or opens) another one.
        raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine of the console's role (user sessions), one per URL."""
    return _engine_for((settings or get_settings()).resolved_database_url)


def get_service_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine of the service role; the same engine as get_engine's with a single URL."""
    return _engine_for((settings or get_settings()).resolved_service_database_url)


def _engine_for(url: str) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _apply_scope(session: Session, _transaction: Any, connection: Any) -> None:
    # set_config(..., true) is transaction-local, so it must be re-applied at every BEGIN; it ends with
    # the transaction, so a pooled connection never carries one organization's scope into the next one.
    # Service sessions set nothing: what the service role may see depends on the role alone.
    org_id = session.info.get("organization_id")
    if org_id is None or connection.dialect.name != "postgresql":
        return
    connection.execute(text("SELECT set_config(:k, :v, true)"), {"k": ORG_SETTING, "v": str(int(org_id))})


_factories: dict[int, sessionmaker[Session]] = {}


def _factory(engine: Engine) -> sessionmaker[Session]:
    factory = _factories.get(id(engine))
    if factory is None:
        factory = _factories[id(engine)] = sessionmaker(engine, expire_on_commit=False)
        event.listen(factory, "after_begin", _apply_scope)
    return factory


@contextmanager
def _scoped(engine: Engine, **info: Any) -> Iterator[Session]:
    session = _factory(engine)()
    session.info.update(info)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def org_session(organization_id: int, *, engine: Engine | None = None,
                settings: Settings | None = None) -> AbstractContextManager[Session]:
    """A session as the console's role that sees only `organization_id`'s rows (enforced by RLS on
    PostgreSQL); commits on success. `engine` overrides the one `settings` name."""
    return _scoped(engine or get_engine(settings), organization_id=int(organization_id))


def service_session(*, engine: Engine | None = None,
                    settings: Settings | None = None) -> AbstractContextManager[Session]:
    """A cross-organization session as the service role, for workers, login and the CLI; never a user's
    page query. `engine` overrides the one `settings` name."""
    return _scoped(engine or get_service_engine(settings))
