"""Pooled PostgreSQL connections: an idle connection that died is replaced at checkout, a busy one is not pinged."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from aiconsole.platform.db import engine as engine_mod
from aiconsole.platform.db.engine import make_engine

pytestmark = pytest.mark.postgres


def _pid(eng) -> int:  # type: ignore[no-untyped-def]
    with eng.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_an_idle_connection_killed_by_the_server_is_replaced(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    eng = make_engine(pg_url, pool_size=1, max_overflow=0)
    first = _pid(eng)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar_one()
    admin.dispose()
    monkeypatch.setattr(engine_mod, "PING_AFTER_IDLE_S", 0.0)  # the pooled connection counts as idle
    second = _pid(eng)
    assert second != first
    eng.dispose()


def test_a_recently_used_connection_is_not_pinged(pg_url: str) -> None:
    """Without a ping, a connection killed while recently used fails its next statement; the pool then heals."""
    from sqlalchemy.exc import OperationalError

    eng = make_engine(pg_url, pool_size=1, max_overflow=0)
    first = _pid(eng)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
    admin.dispose()
    with pytest.raises(OperationalError), eng.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _pid(eng) != first
    eng.dispose()
