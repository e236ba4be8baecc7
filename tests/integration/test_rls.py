"""PostgreSQL row-level security, proven as an ordinary application role (no superuser, no BYPASSRLS).

Two organizations get one row in every org-scoped table (plus platform-wide rows where
organization_id may be NULL). Then, connected as the app role, queries without any org filter must
see only the current organization's rows, writes into another organization must be refused by the
policy, a connection without an organization sees nothing, and the service context sees everything.
Run twice: the role owning the tables (FORCE ROW LEVEL SECURITY must bind it) and the role holding
only grants.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from aiconsole.platform.db.engine import make_engine, org_session, service_session
from aiconsole.platform.db.models import (
    ORG_SCOPED_TABLES,
    AiDashboardMetric,
    AiProcessingResult,
    AiProviderHealth,
    AuditLog,
    Base,
    Correction,
    Experiment,
    Organization,
    Photo,
    PhotoTag,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
    User,
    ValidationRun,
)
from aiconsole.platform.db.rls import role_bypasses_rls, unprotected_tables
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import normalize_database_url

pytestmark = pytest.mark.postgres

SHARED_TABLES = tuple(t for t in ORG_SCOPED_TABLES if Base.metadata.tables[t].c.organization_id.nullable)
RLS_DENIED = "row-level security"
PG_URL = os.environ.get("AICONSOLE_TEST_DATABASE_URL")


@dataclass(frozen=True)
class Tenants:
    a: int
    b: int
    app: Engine  # connects as the unprivileged application role
    admin: Engine  # connects as the superuser that created the database


def _seed_org(s: Session, slug: str) -> int:
    """One row of this organization in every org-scoped table."""
    org = Organization(name=f"Org {slug}", slug=slug)
    s.add(org)
    s.flush()
    o = org.id
    user = User(organization_id=o, email=f"admin@{slug}.test", display_name="Admin", role="admin")
    photo = Photo(
        organization_id=o,
        sha256=hashlib.sha256(slug.encode()).hexdigest(),
        storage_uri=f"file:///{slug}.jpg",
        filename=f"{slug}.jpg",
        content_type="image/jpeg",
        byte_size=1234,
        width=64,
        height=48,
    )
    prompt = Prompt(organization_id=o, name="tagger")
    experiment = Experiment(organization_id=o, name="exp")
    s.add_all([user, photo, prompt, experiment])
    s.flush()
    version = PromptVersion(
        organization_id=o, prompt_id=prompt.id, version=1, content="List tags.", author_id=user.id
    )
    s.add(version)
    s.flush()
    result = AiProcessingResult(
        organization_id=o,
        photo_id=photo.id,
        ai_provider="local",
        model="local-analyzer-v1",
        prompt_version_id=version.id,
        experiment_id=experiment.id,
        status="completed",
    )
    s.add(result)
    s.flush()
    tag = PhotoTag(
        organization_id=o,
        photo_id=photo.id,
        result_id=result.id,
        label="sky",
        confidence=0.9,
        review_state="accepted",
    )
    s.add(tag)
    s.flush()
    s.add_all(
        [
            PromptLabel(organization_id=o, prompt_id=prompt.id, label="production", version_id=version.id),
            PipelineConfig(organization_id=o, active_prompt_id=prompt.id),
            ProviderConfig(organization_id=o, provider="local"),
            Correction(
                organization_id=o, photo_id=photo.id, tag_id=tag.id, action="relabel", user_id=user.id
            ),
            ValidationRun(organization_id=o, name="baseline"),
            AiProviderHealth(organization_id=o, provider_name="local", status="healthy"),
            AiDashboardMetric(organization_id=o, metric_type="queue_depth", metric_value=3.0),
            ProcessingRollupHourly(
                organization_id=o, hour=datetime(2026, 1, 1, tzinfo=UTC), ai_provider="local"
            ),
            AuditLog(
                organization_id=o, user_id=user.id, actor=user.email, action="create", entity_type="photo"
            ),
        ]
    )
    return o


def _seed_platform_rows(s: Session) -> None:
    s.add_all(
        [
            AiProviderHealth(organization_id=None, provider_name="gemini", status="degraded"),
            AuditLog(organization_id=None, actor="system", action="probe", entity_type="provider"),
        ]
    )


@pytest.fixture(scope="module", params=["owner", "grantee"])
def tenants(request: pytest.FixtureRequest) -> Iterator[Tenants]:
    """A fresh migrated database with two seeded organizations, and an engine connected as a fresh
    non-superuser role. Shared by the module: tests roll back what they write (see _rolled_back)."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need AICONSOLE_TEST_DATABASE_URL")
    server = create_engine(normalize_database_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"aict_rls_{uuid.uuid4().hex[:10]}"
    role = f"aiconsole_app_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'"))
    db_url = server.url.set(database=name)
    admin = make_engine(db_url.render_as_string(hide_password=False), pool_size=1)
    app = make_engine(
        db_url.set(username=role, password=password).render_as_string(hide_password=False), pool_size=2
    )
    try:
        upgrade(db_url.render_as_string(hide_password=False))
        with admin.begin() as conn:
            conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
            if request.param == "owner":
                for table in Base.metadata.tables:
                    conn.execute(
                        text(f"ALTER TABLE {table} OWNER TO {role}")
                    )  # sequences follow their tables
            else:
                conn.execute(
                    text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
                )
                conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
        with service_session(engine=app) as s:
            a, b = _seed_org(s, "alpha"), _seed_org(s, "beta")
            _seed_platform_rows(s)
        yield Tenants(a=a, b=b, app=app, admin=admin)
    finally:
        app.dispose()
        admin.dispose()
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        server.dispose()


class _Rollback(Exception):
    """Raised at the end of a test's writes so org_session rolls them back."""


@contextmanager
def _rolled_back(org: int | None, engine: Engine) -> Iterator[Session]:
    """An org_session (or service_session for None) whose writes are rolled back, keeping the seed intact."""
    with pytest.raises(_Rollback):
        scope = service_session(engine=engine) if org is None else org_session(org, engine=engine)
        with scope as s:
            yield s
            raise _Rollback


def _orgs_in(session: Session | Connection, table: str) -> list[int | None]:
    # Deliberately no WHERE clause: isolation must come from the database, not from the query.
    return list(session.execute(text(f"SELECT organization_id FROM {table}")).scalars())


def test_the_app_role_is_really_bound_by_rls(tenants: Tenants) -> None:
    with tenants.app.connect() as conn:
        assert role_bypasses_rls(conn) is False
        assert unprotected_tables(conn) == []


def test_seed_covers_every_org_scoped_table(tenants: Tenants) -> None:
    with service_session(engine=tenants.app) as s:
        for table in ORG_SCOPED_TABLES:
            orgs = _orgs_in(s, table)
            assert tenants.a in orgs and tenants.b in orgs, f"{table} has no row for both orgs"
        for table in SHARED_TABLES:
            assert None in _orgs_in(s, table), f"{table} has no platform-wide row"


def test_service_session_sees_and_writes_every_organization(tenants: Tenants) -> None:
    with _rolled_back(None, tenants.app) as s:
        assert sorted(s.execute(select(Organization.id)).scalars()) == sorted([tenants.a, tenants.b])
        s.add(ValidationRun(organization_id=tenants.b, name="from the worker"))
        s.add(AuditLog(organization_id=None, actor="system", action="note", entity_type="platform"))


def test_org_session_sees_only_its_own_rows_in_every_table(tenants: Tenants) -> None:
    with org_session(tenants.a, engine=tenants.app) as s:
        assert list(s.execute(text("SELECT id FROM organizations")).scalars()) == [tenants.a]
        for table in ORG_SCOPED_TABLES:
            orgs = _orgs_in(s, table)
            assert tenants.b not in orgs, f"org B's rows leak into org A's session through {table}"
            assert tenants.a in orgs, f"org A cannot see its own rows in {table}"
            if table in SHARED_TABLES:
                assert set(orgs) == {tenants.a, None}, table
            else:
                assert set(orgs) == {tenants.a}, table
        # The ORM path is the same queries: org B's user is simply not there.
        assert s.execute(select(User).where(User.email == "admin@beta.test")).scalar_one_or_none() is None


def _row_of(engine: Engine, table: str, org: int | None) -> dict[str, Any]:
    """A copy of one row of `org` in `table`, without its surrogate id (so the copy is a new row)."""
    t = Base.metadata.tables[table]
    where = t.c.organization_id.is_(None) if org is None else t.c.organization_id == org
    with service_session(engine=engine) as s:
        row = dict(s.execute(select(t).where(where).limit(1)).mappings().one())
    if "id" in t.c and t.c.id.autoincrement is True:
        row.pop("id")
    return row


def _refused_by_policy(err: ProgrammingError) -> bool:
    return getattr(err.orig, "sqlstate", None) == "42501" and RLS_DENIED in str(err.orig)


@pytest.mark.parametrize("table", ORG_SCOPED_TABLES)
def test_inserting_a_row_for_another_org_is_refused(tenants: Tenants, table: str) -> None:
    row = _row_of(tenants.app, table, tenants.b)
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.app) as s:
        s.execute(Base.metadata.tables[table].insert().values(**row))
    assert _refused_by_policy(info.value), info.value
    # Org A's own row, deleted and put back, is accepted: the refusal above was about the org only.
    row = _row_of(tenants.app, table, tenants.a)
    with _rolled_back(tenants.a, tenants.app) as s:
        assert (
            s.execute(text(f"DELETE FROM {table} WHERE organization_id = :a"), {"a": tenants.a}).rowcount == 1
        )
        s.execute(Base.metadata.tables[table].insert().values(**row))
        assert _orgs_in(s, table).count(tenants.a) == 1


@pytest.mark.parametrize("table", ORG_SCOPED_TABLES)
def test_another_orgs_rows_cannot_be_updated_deleted_or_moved_into(tenants: Tenants, table: str) -> None:
    with _rolled_back(tenants.a, tenants.app) as s:
        touched = s.execute(
            text(f"UPDATE {table} SET organization_id = organization_id WHERE organization_id = :b"),
            {"b": tenants.b},
        )
        assert touched.rowcount == 0
        assert (
            s.execute(text(f"DELETE FROM {table} WHERE organization_id = :b"), {"b": tenants.b}).rowcount == 0
        )
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.app) as s:
        s.execute(
            text(f"UPDATE {table} SET organization_id = :b WHERE organization_id = :a"),
            {"a": tenants.a, "b": tenants.b},
        )
    assert _refused_by_policy(info.value), info.value
    with service_session(engine=tenants.app) as s:
        assert _orgs_in(s, table).count(tenants.b) == 1, "org B's row must be untouched"


def test_organizations_cannot_be_created_or_seen_across_orgs(tenants: Tenants) -> None:
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.app) as s:
        s.execute(
            text(
                "INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                " VALUES ('Gamma', 'gamma', 'UTC', false, now())"
            )
        )
    assert _refused_by_policy(info.value)
    with _rolled_back(tenants.a, tenants.app) as s:
        assert (
            s.execute(text("UPDATE organizations SET name = 'x' WHERE id = :b"), {"b": tenants.b}).rowcount
            == 0
        )
        assert s.execute(text("DELETE FROM organizations WHERE id = :b"), {"b": tenants.b}).rowcount == 0
        assert (
            s.execute(
                text("UPDATE organizations SET timezone = 'Europe/Paris' WHERE id = :a"), {"a": tenants.a}
            ).rowcount
            == 1
        )


@pytest.mark.parametrize("table", SHARED_TABLES)
def test_platform_rows_are_readable_by_every_org_but_writable_only_by_the_service(
    tenants: Tenants, table: str
) -> None:
    for org in (tenants.a, tenants.b):
        with org_session(org, engine=tenants.app) as s:
            assert None in _orgs_in(s, table)
    with _rolled_back(tenants.a, tenants.app) as s:
        assert (
            s.execute(
                text(f"UPDATE {table} SET organization_id = NULL WHERE organization_id IS NULL")
            ).rowcount
            == 0
        )
        assert s.execute(text(f"DELETE FROM {table} WHERE organization_id IS NULL")).rowcount == 0
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.app) as s:
        s.execute(Base.metadata.tables[table].insert().values(**_row_of(tenants.app, table, None)))
    assert _refused_by_policy(info.value)
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.app) as s:
        s.execute(
            text(f"UPDATE {table} SET organization_id = NULL WHERE organization_id = :a"), {"a": tenants.a}
        )
    assert _refused_by_policy(info.value)
    with service_session(engine=tenants.app) as s:
        assert _orgs_in(s, table).count(None) == 1


def test_without_an_organization_nothing_is_visible(tenants: Tenants) -> None:
    tables = ("organizations", *ORG_SCOPED_TABLES)
    # A brand-new connection that never set anything: current_setting(..., true) is NULL.
    fresh = create_engine(tenants.app.url, poolclass=NullPool)
    with fresh.connect() as conn:
        assert (
            conn.execute(text("SELECT current_setting('app.current_organization_id', true)")).scalar() is None
        )
        for table in tables:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    fresh.dispose()
    # A pooled connection after a scoped transaction ended: the settings read '' and 'off'.
    with tenants.app.connect() as conn:
        with conn.begin():
            conn.execute(
                text("SELECT set_config('app.current_organization_id', :o, true)"), {"o": str(tenants.a)}
            )
            assert conn.execute(text("SELECT count(*) FROM photos")).scalar() == 1
        assert (
            conn.execute(text("SELECT current_setting('app.current_organization_id', true)")).scalar() == ""
        )
        for table in tables:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        conn.rollback()
        # And nothing can be written without one.
        with pytest.raises(ProgrammingError) as info, conn.begin():
            conn.execute(
                text(
                    "INSERT INTO validation_runs (organization_id, name, status, config, metrics, created_at)"
                    " VALUES (:a, 'x', 'pending', '{}', '{}', now())"
                ),
                {"a": tenants.a},
            )
        assert _refused_by_policy(info.value)


def test_an_org_scope_does_not_leak_into_the_next_transaction(tenants: Tenants) -> None:
    """Pooled connections are reused: org A's scope must not survive into org B's session or a bare one."""
    single = create_engine(tenants.app.url, pool_size=1, max_overflow=0)
    try:
        with org_session(tenants.a, engine=single) as s:
            assert _orgs_in(s, "photos") == [tenants.a]
        with org_session(tenants.b, engine=single) as s:
            assert _orgs_in(s, "photos") == [tenants.b]
        with single.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM photos")).scalar() == 0
    finally:
        single.dispose()


def test_a_superuser_is_reported_as_bypassing(tenants: Tenants) -> None:
    with tenants.admin.connect() as conn:
        assert role_bypasses_rls(conn) is True
        assert unprotected_tables(conn) == []
