"""Migration 0006: policies name no setting, cover every table the models define, come back as 0002's on
downgrade, do nothing on SQLite; and migrating as a non-superuser owner still runs older data migrations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from alembic.script import ScriptDirectory
from rls_roles import set_up_roles
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.models import ORG_SCOPED_TABLES, Base
from aiconsole.platform.db.rls import PROTECTED_TABLES, table_rls, unprotected_tables
from aiconsole.platform.migrate import ROOT, current_revision, downgrade, upgrade


def _revision(rev: str) -> ModuleType:
    module = ScriptDirectory(str(ROOT / "migrations")).get_revision(rev).module
    assert module is not None
    return module


LATER = ScriptDirectory(str(ROOT / "migrations"))
# Tables created after 0006 by revisions that protect them themselves, with 0006's policy.
LATER_TENANT_TABLES = tuple(t for r in LATER.walk_revisions() if r.module is not None
                            for t in getattr(r.module, "RLS_TENANT_TABLES", ()))


def test_0006_covers_exactly_the_protected_tables() -> None:
    m = _revision("0006")
    listed = ["organizations", *m.TENANT_TABLES, *m.SHARED_TABLES, *m.USER_SCOPED_TABLES, *m.SERVICE_ONLY_TABLES,
              *LATER_TENANT_TABLES]
    assert len(listed) == len(set(listed)), "a table is listed twice"
    assert set(listed) == set(PROTECTED_TABLES) == set(Base.metadata.tables)
    assert set(m.TENANT_TABLES) | set(m.SHARED_TABLES) | set(LATER_TENANT_TABLES) == set(ORG_SCOPED_TABLES)
    assert set(m.SHARED_TABLES) == {t for t in ORG_SCOPED_TABLES if Base.metadata.tables[t].c.organization_id.nullable}
    assert all("login_sessions" not in t and "workers" not in t for t in ORG_SCOPED_TABLES)


def test_0006_is_a_no_op_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'policies.db'}"
    upgrade(url, "0005")
    engine = make_engine(url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()
    upgrade(url, "0006")
    downgrade(url, "0005")
    upgrade(url, "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all() == before
    assert current_revision(engine) == "0006"
    engine.dispose()


def _policies(engine: Engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT tablename, policyname, qual FROM pg_policies "
                                 "WHERE schemaname = current_schema()")).all()
    return {(table, name): qual for table, name, qual in rows}


@pytest.mark.postgres
def test_0006_replaces_the_setting_and_downgrade_restores_it(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        upgrade(pg_url, "0006")
        policies = _policies(engine)
        assert not any("bypass_rls" in q for q in policies.values()), "a policy still reads app.bypass_rls"
        assert all("pg_has_role" in q for (_, name), q in policies.items() if name != "platform_rows_readable")
        assert ("login_sessions", "tenant_isolation") in policies and ("workers", "service_only") in policies
        with engine.connect() as conn:
            # Only the tables later revisions create (and protect) are missing yet.
            assert sorted(unprotected_tables(conn)) == sorted(LATER_TENANT_TABLES)
            assert not set(LATER_TENANT_TABLES) & set(table_rls(conn))
        downgrade(pg_url, "0005")
        policies = _policies(engine)
        assert {t for t, _ in policies} == set(PROTECTED_TABLES) - {"login_sessions", "workers", *LATER_TENANT_TABLES}
        assert all("bypass_rls" in q for (_, name), q in policies.items() if name == "tenant_isolation")
        with engine.connect() as conn:
            states = table_rls(conn)
        assert not any(states[t].enabled or states[t].forced for t in ("login_sessions", "workers"))
        upgrade(pg_url)
        with engine.connect() as conn:
            assert unprotected_tables(conn) == []
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Roles:
    console: str
    service: str
    service_url: str


@pytest.fixture
def roles(pg_url: str) -> Iterator[Roles]:
    """A fresh console and service role (LOGIN NOSUPERUSER NOBYPASSRLS) for pg_url's database."""
    tag = uuid.uuid4().hex[:10]
    console, service = f"aict_mcon_{tag}", f"aict_msvc_{tag}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    set_up_roles(admin, console, service)
    try:
        yield Roles(console, service, make_url(pg_url).set(username=service).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {console}, {service}"))
            conn.execute(text(f"DROP ROLE {console}"))
            conn.execute(text(f"DROP ROLE {service}"))
        admin.dispose()


@pytest.mark.postgres
def test_an_owner_without_superuser_runs_the_data_migrations_before_0006(pg_url: str, roles: Roles) -> None:
    """0005 backfills pause_kind under 0002's policies, which only the setting lets an owner past."""
    upgrade(pg_url, "0004")
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, now()) RETURNING id")).scalar_one()
        conn.execute(text(
            "INSERT INTO pipeline_config (organization_id, active_provider, active_model, accept_threshold,"
            " reject_threshold, label_overrides, max_retries, worker_concurrency, paused, pause_reason,"
            " version, updated_at) VALUES (:org, 'local', 'local-analyzer-v1', 0.8, 0.4, '{}', 3, 8, true,"
            " 'Daily budget of $5.00 reached ($5.01 spent today).', 1, now())"), {"org": org})
    set_up_roles(admin, roles.console, roles.service)  # the tables become the service role's
    upgrade(roles.service_url)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pause_kind FROM pipeline_config")).scalar_one() == "daily_budget"
        assert conn.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
                            ).scalars().all() == [roles.service]
    admin.dispose()
