"""Pooled PostgreSQL connections: an idle connection that died is replaced at checkout, a busy one is not pinged;
sessions set their organization and nothing else; one engine per role URL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from aiconsole.platform.db import engine as engine_mod
from aiconsole.platform.db.engine import get_engine, get_service_engine, make_engine, org_session, service_session
from aiconsole.platform.settings import Settings

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


def test_sessions_set_the_organization_only_and_never_a_bypass(pg_url: str) -> None:
    """org_session names its organization for the transaction; service_session sets nothing at all: what the
    service role sees depends on the role, so there is no setting a console connection could copy."""
    eng = make_engine(pg_url, pool_size=1, max_overflow=0)
    settings = "SELECT current_setting('app.current_organization_id', true), current_setting('app.bypass_rls', true)"
    try:
        with service_session(engine=eng) as s:
            assert s.execute(text(settings)).one() == (None, None)
        with org_session(7, engine=eng) as s:
            assert s.execute(text(settings)).one() == ("7", None)
        with service_session(engine=eng) as s:  # the same pooled connection: org 7 ended with its transaction
            assert s.execute(text(settings)).one() == ("", None)
    finally:
        eng.dispose()


def test_one_url_gives_one_engine_and_two_urls_two(pg_settings: Settings) -> None:
    assert get_service_engine(pg_settings) is get_engine(pg_settings)
    assert not pg_settings.separate_service_role
    assert pg_settings.database_url is not None
    other = pg_settings.model_copy(update={"service_database_url": pg_settings.database_url + "?application_name=svc"})
    assert other.separate_service_role
    assert get_service_engine(other) is not get_engine(other)
    assert get_engine(other) is get_engine(pg_settings)
    with service_session(settings=other) as s:
        assert s.execute(text("SELECT current_setting('application_name')")).scalar_one() == "svc"
