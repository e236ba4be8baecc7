"""PostgreSQL row-level security, proven as the console's role: LOGIN NOSUPERUSER NOBYPASSRLS, owning nothing.

Two organizations get one row in every org-scoped table and a login session each; there is a worker row and
platform-wide rows where organization_id may be NULL. Connected as the console's role, queries without any
org filter must see only the current organization's rows whatever settings the connection sets (the old
`app.bypass_rls` included), writes into another organization must be refused by the policy, a connection
without an organization sees nothing, and the role can neither switch row-level security off nor become
the service role. The service role (the tables' owner, NOSUPERUSER NOBYPASSRLS too) sees everything.
Run twice: roles set up before the first migration (fresh) and after it (adopted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from rls_roles import KINDS, TwoRoles, two_role_database  # tests/ is on sys.path through the root conftest
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from aiconsole.platform.db.engine import org_session, service_session
from aiconsole.platform.db.models import (
    ORG_SCOPED_TABLES,
    AiDashboardMetric,
    AiProcessingResult,
    AiProviderHealth,
    AuditLog,
    Base,
    Correction,
    CorrectionBatch,
    CorrectionBatchItem,
    DisagreementRefresh,
    DoubleReview,
    Experiment,
    GoldenSet,
    GoldenSetItem,
    GoldenSetRun,
    GroundTruth,
    LabRun,
    LabRunItem,
    LoginSession,
    Organization,
    Photo,
    PhotoDisagreement,
    PhotoTag,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
    QualitySetting,
    Review,
    ReviewClaim,
    ReviewDecision,
    User,
    ValidationRun,
    Worker,
)
from aiconsole.platform.db.rls import PROTECTED_TABLES, role_bypasses_rls, table_rls, unprotected_tables

pytestmark = pytest.mark.postgres

SHARED_TABLES = tuple(t for t in ORG_SCOPED_TABLES if Base.metadata.tables[t].c.organization_id.nullable)
RLS_DENIED = "row-level security"
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Tenants:
    a: int
    b: int
    user_of: dict[int, int]  # organization id -> the id of its one user (who has the one login session)
    db: TwoRoles

    @property
    def console(self) -> Engine:
        """Connects as the console's role."""
        return self.db.console

    @property
    def service(self) -> Engine:
        """Connects as the service role."""
        return self.db.service


def _seed_org(s: Session, slug: str) -> int:
    """One row of this organization in every org-scoped table, and a login session of its user."""
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
            LoginSession(
                user_id=user.id, token_hash=hashlib.sha256(f"token-{slug}".encode()).hexdigest(),
                expires_at=datetime(2030, 1, 1, tzinfo=UTC),
            ),
            ReviewClaim(organization_id=o, photo_id=photo.id, reviewer_id=user.id, token=f"claim-{slug}",
                        queue_order="oldest", expires_at=FAR_FUTURE),
        ]
    )
    review = Review(organization_id=o, photo_id=photo.id, reviewer_id=user.id, claim_token=f"review-{slug}",
                    queue_order="random", claimed_at=datetime(2026, 1, 1, tzinfo=UTC))
    s.add(review)
    s.flush()
    s.add_all(
        [
            ReviewDecision(organization_id=o, review_id=review.id, photo_id=photo.id, tag_id=tag.id,
                           action="approve", label_before="sky", label_after="sky", confidence=0.8,
                           reviewer_id=user.id),
            GroundTruth(organization_id=o, photo_id=photo.id, label="sky", source="review", review_id=review.id,
                        set_by=user.id),
        ]
    )
    run = LabRun(organization_id=o, name=f"run-{slug}", source="sample", provider="local", model="local-analyzer-v1",
                 status="completed", total=1, processed=1, created_by=user.id)
    s.add(run)
    s.flush()
    s.add(LabRunItem(organization_id=o, run_id=run.id, photo_id=photo.id, status="done"))
    batch = CorrectionBatch(organization_id=o, template="accept", params={"at_least": 0.9}, selection={},
                            status="completed", matched=1, processed=1, changed=1, created_by=user.id)
    s.add(batch)
    s.flush()
    s.add(CorrectionBatchItem(organization_id=o, batch_id=batch.id, tag_id=tag.id, photo_id=photo.id,
                              action="accept", before={"review_state": "accepted"},
                              after={"review_state": "accepted", "reviewed_by": user.id}))
    golden = GoldenSet(organization_id=o, name="golden", version=1, created_by=user.id)
    s.add(golden)
    s.flush()
    run = s.scalars(select(ValidationRun.id).where(ValidationRun.organization_id == o)).one()
    s.add_all([GoldenSetItem(organization_id=o, golden_set_id=golden.id, photo_id=photo.id, sha256=photo.sha256,
                             filename=photo.filename, labels=["sky"]),
               GoldenSetRun(organization_id=o, golden_set_id=golden.id, validation_run_id=run)])
    s.add_all([QualitySetting(organization_id=o, double_review_share=0.05, version=1, updated_by=user.id),
               DoubleReview(organization_id=o, photo_id=photo.id, first_review_id=review.id, status="waiting")])
    s.add_all([PhotoDisagreement(organization_id=o, photo_id=photo.id, jaccard=0.25, sources=2, result_a_id=1,
                                 result_b_id=2),
               DisagreementRefresh(organization_id=o, through_result_id=0)])
    return o


def _seed_platform_rows(s: Session) -> None:
    s.add_all(
        [
            AiProviderHealth(organization_id=None, provider_name="gemini", status="degraded"),
            AuditLog(organization_id=None, actor="system", action="probe", entity_type="provider"),
            Worker(id="worker-1", hostname="host", pid=1),
        ]
    )


@pytest.fixture(scope="module", params=KINDS)
def tenants(request: pytest.FixtureRequest) -> Iterator[Tenants]:
    """A fresh migrated database with two seeded organizations and the two roles. Shared by the module:
    tests roll back what they write (see _rolled_back)."""
    with two_role_database(request.param) as db:
        with service_session(engine=db.service) as s:
            a, b = _seed_org(s, "alpha"), _seed_org(s, "beta")
            _seed_platform_rows(s)
            user_of = {org: s.scalars(select(User.id).where(User.organization_id == org)).one() for org in (a, b)}
        yield Tenants(a=a, b=b, user_of=user_of, db=db)


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


def _orgs_visible(session: Session | Connection, table: str, t: Tenants) -> list[int | None]:
    """The organization of every row of `table` the connection sees (None: platform-wide)."""
    if table == "organizations":
        return list(session.execute(text("SELECT id FROM organizations")).scalars())
    if table == "login_sessions":
        org_of = {user: org for org, user in t.user_of.items()}
        return [org_of[u] for u in session.execute(text("SELECT user_id FROM login_sessions")).scalars()]
    if table == "workers":
        return [None for _ in session.execute(text("SELECT id FROM workers")).scalars()]
    return _orgs_in(session, table)


def _one_org_sees(table: str, org: int) -> list[int | None]:
    """What a session of `org` must see in `table`: its own row, and the platform-wide one if shared."""
    if table == "workers":
        return []
    return [org, None] if table in SHARED_TABLES else [org]


def _refused(err: ProgrammingError, words: str = RLS_DENIED) -> bool:
    return getattr(err.orig, "sqlstate", None) == "42501" and words in str(err.orig)


def test_the_console_role_is_bound_and_the_service_role_passes_by_ownership(tenants: Tenants) -> None:
    with tenants.console.connect() as conn:
        assert role_bypasses_rls(conn) is False
        assert unprotected_tables(conn) == []
    with tenants.service.connect() as conn:
        # Neither superuser nor BYPASSRLS: the policies let it through because it owns the tables.
        assert conn.execute(text("SELECT rolsuper OR rolbypassrls FROM pg_roles "
                                 "WHERE rolname = current_user")).scalar_one() is False
        assert role_bypasses_rls(conn) is True
        owners = set(conn.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"))
                     .scalars())
        assert owners == {tenants.db.service_role}
        assert set(PROTECTED_TABLES) <= {t for t, state in table_rls(conn).items() if state.protected}


def test_seed_covers_every_protected_table(tenants: Tenants) -> None:
    assert set(PROTECTED_TABLES) == set(Base.metadata.tables), "a table has no row-level security"
    with service_session(engine=tenants.service) as s:
        for table in PROTECTED_TABLES:
            orgs = _orgs_visible(s, table, tenants)
            if table == "workers":
                assert orgs == [None]
            else:
                assert tenants.a in orgs and tenants.b in orgs, f"{table} has no row for both orgs"
        for table in SHARED_TABLES:
            assert None in _orgs_in(s, table), f"{table} has no platform-wide row"


def test_service_session_sees_and_writes_every_organization(tenants: Tenants) -> None:
    with _rolled_back(None, tenants.service) as s:
        assert sorted(s.execute(select(Organization.id)).scalars()) == sorted([tenants.a, tenants.b])
        s.add(ValidationRun(organization_id=tenants.b, name="from the worker"))
        s.add(AuditLog(organization_id=None, actor="system", action="note", entity_type="platform"))
        s.add(Worker(id="worker-2", hostname="host", pid=2))
        s.flush()


def test_org_session_sees_only_its_own_rows_in_every_table(tenants: Tenants) -> None:
    with org_session(tenants.a, engine=tenants.console) as s:
        for table in PROTECTED_TABLES:
            orgs = _orgs_visible(s, table, tenants)
            assert sorted(orgs, key=str) == sorted(_one_org_sees(table, tenants.a), key=str), table
        # The ORM path is the same queries: org B's user is simply not there.
        assert s.execute(select(User).where(User.email == "admin@beta.test")).scalar_one_or_none() is None


# Every way a connection may set the setting the old policies let through: none of them may widen anything.
BYPASS_ATTEMPTS = {
    "set_config for the transaction": "SELECT set_config('app.bypass_rls', 'on', true)",
    "set_config for the session": "SELECT set_config('app.bypass_rls', 'on', false)",
    "SET": "SET app.bypass_rls = 'on'",
    "SET LOCAL": "SET LOCAL app.bypass_rls = 'on'",
}


@pytest.mark.parametrize("attempt", list(BYPASS_ATTEMPTS))
def test_setting_app_bypass_rls_shows_the_console_role_nothing_more(tenants: Tenants, attempt: str) -> None:
    with _rolled_back(tenants.a, tenants.console) as s:
        s.execute(text(BYPASS_ATTEMPTS[attempt]))
        assert s.execute(text("SELECT current_setting('app.bypass_rls')")).scalar_one() == "on"
        for table in PROTECTED_TABLES:
            orgs = _orgs_visible(s, table, tenants)
            assert tenants.b not in orgs, f"app.bypass_rls opens org B's rows in {table} to org A's session"
            assert sorted(orgs, key=str) == sorted(_one_org_sees(table, tenants.a), key=str), table
        # Nor does it let a write into org B through.
        s.execute(text("SAVEPOINT before_write"))
        with pytest.raises(ProgrammingError) as info:
            s.execute(text("UPDATE photos SET organization_id = :b WHERE organization_id = :a"),
                      {"a": tenants.a, "b": tenants.b})
        assert _refused(info.value), info.value
        s.execute(text("ROLLBACK TO SAVEPOINT before_write"))
    # Outside any organization the setting opens nothing either.
    with tenants.console.connect() as conn:
        conn.execute(text(BYPASS_ATTEMPTS[attempt]))
        for table in PROTECTED_TABLES:
            assert _orgs_visible(conn, table, tenants) == [], table
        conn.rollback()


def test_a_transaction_sees_the_one_organization_it_names(tenants: Tenants) -> None:
    """The organization comes from app.current_organization_id, which only the session layer sets (from the
    logged-in actor, through a bound parameter): a statement that set it could read another organization,
    but still one at a time. No SQL is assembled from user text, so no user can issue that statement."""
    with _rolled_back(tenants.a, tenants.console) as s:
        s.execute(text("SELECT set_config('app.current_organization_id', :b, true)"), {"b": str(tenants.b)})
        for table in PROTECTED_TABLES:
            orgs = _orgs_visible(s, table, tenants)
            assert sorted(orgs, key=str) == sorted(_one_org_sees(table, tenants.b), key=str), table
        with pytest.raises(ProgrammingError):  # not a list, not an expression: one bigint
            s.execute(text("SELECT set_config('app.current_organization_id', :v, true); SELECT 1 FROM photos"),
                      {"v": f"{tenants.a} OR true"})


def _row_of(engine: Engine, table: str, org: int | None) -> dict[str, Any]:
    """A copy of one row of `org` in `table`, without its surrogate id (so the copy is a new row)."""
    t = Base.metadata.tables[table]
    where = t.c.organization_id.is_(None) if org is None else t.c.organization_id == org
    with service_session(engine=engine) as s:
        row = dict(s.execute(select(t).where(where).limit(1)).mappings().one())
    if "id" in t.c and t.c.id.autoincrement is True:
        row.pop("id")
    return row


@pytest.mark.parametrize("table", ORG_SCOPED_TABLES)
def test_inserting_a_row_for_another_org_is_refused(tenants: Tenants, table: str) -> None:
    row = _row_of(tenants.service, table, tenants.b)
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.execute(Base.metadata.tables[table].insert().values(**row))
    assert _refused(info.value), info.value
    # Org A's own row, deleted and put back, is accepted: the refusal above was about the org only.
    row = _row_of(tenants.service, table, tenants.a)
    with _rolled_back(tenants.a, tenants.console) as s:
        assert (
            s.execute(text(f"DELETE FROM {table} WHERE organization_id = :a"), {"a": tenants.a}).rowcount == 1
        )
        s.execute(Base.metadata.tables[table].insert().values(**row))
        assert _orgs_in(s, table).count(tenants.a) == 1


@pytest.mark.parametrize("table", ORG_SCOPED_TABLES)
def test_another_orgs_rows_cannot_be_updated_deleted_or_moved_into(tenants: Tenants, table: str) -> None:
    with _rolled_back(tenants.a, tenants.console) as s:
        touched = s.execute(
            text(f"UPDATE {table} SET organization_id = organization_id WHERE organization_id = :b"),
            {"b": tenants.b},
        )
        assert touched.rowcount == 0
        assert (
            s.execute(text(f"DELETE FROM {table} WHERE organization_id = :b"), {"b": tenants.b}).rowcount == 0
        )
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.execute(
            text(f"UPDATE {table} SET organization_id = :b WHERE organization_id = :a"),
            {"a": tenants.a, "b": tenants.b},
        )
    assert _refused(info.value), info.value
    with service_session(engine=tenants.service) as s:
        assert _orgs_in(s, table).count(tenants.b) == 1, "org B's row must be untouched"


def test_another_orgs_login_session_cannot_be_read_extended_ended_or_taken(tenants: Tenants) -> None:
    mine, theirs = tenants.user_of[tenants.a], tenants.user_of[tenants.b]
    with service_session(engine=tenants.service) as s:
        before = s.execute(select(LoginSession.expires_at).where(LoginSession.user_id == theirs)).scalar_one()
    with _rolled_back(tenants.a, tenants.console) as s:
        assert list(s.execute(text("SELECT user_id FROM login_sessions")).scalars()) == [mine]
        extend = text("UPDATE login_sessions SET expires_at = :far, revoked_at = NULL WHERE user_id = :u")
        assert s.execute(extend, {"far": FAR_FUTURE, "u": theirs}).rowcount == 0
        assert s.execute(text("DELETE FROM login_sessions WHERE user_id = :u"), {"u": theirs}).rowcount == 0
        # Its own organization's sessions stay manageable (revoke_sessions when a user is disabled).
        assert s.execute(extend, {"far": FAR_FUTURE, "u": mine}).rowcount == 1
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.add(LoginSession(user_id=theirs, token_hash="f" * 64, expires_at=FAR_FUTURE))
        s.flush()
    assert _refused(info.value), info.value
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.execute(text("UPDATE login_sessions SET user_id = :b WHERE user_id = :a"), {"a": mine, "b": theirs})
    assert _refused(info.value), info.value
    with service_session(engine=tenants.service) as s:
        rows = s.execute(select(LoginSession.user_id, LoginSession.expires_at)).all()
        assert sorted(rows) == sorted([(mine, before), (theirs, before)]), "the sessions must be untouched"


def test_workers_are_neither_visible_nor_writable_from_an_org_session(tenants: Tenants) -> None:
    with _rolled_back(tenants.a, tenants.console) as s:
        assert s.execute(text("SELECT count(*) FROM workers")).scalar_one() == 0
        assert s.execute(text("UPDATE workers SET status = 'stopped'")).rowcount == 0
        assert s.execute(text("DELETE FROM workers")).rowcount == 0
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.add(Worker(id="impostor", hostname="host", pid=3))
        s.flush()
    assert _refused(info.value), info.value
    with service_session(engine=tenants.service) as s:
        assert s.execute(select(Worker.id, Worker.status)).all() == [("worker-1", "running")]


def test_organizations_cannot_be_created_or_seen_across_orgs(tenants: Tenants) -> None:
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.execute(
            text(
                "INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                " VALUES ('Gamma', 'gamma', 'UTC', false, now())"
            )
        )
    assert _refused(info.value)
    with _rolled_back(tenants.a, tenants.console) as s:
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
        with org_session(org, engine=tenants.console) as s:
            assert None in _orgs_in(s, table)
    with _rolled_back(tenants.a, tenants.console) as s:
        assert (
            s.execute(
                text(f"UPDATE {table} SET organization_id = NULL WHERE organization_id IS NULL")
            ).rowcount
            == 0
        )
        assert s.execute(text(f"DELETE FROM {table} WHERE organization_id IS NULL")).rowcount == 0
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.execute(Base.metadata.tables[table].insert().values(**_row_of(tenants.service, table, None)))
    assert _refused(info.value)
    with pytest.raises(ProgrammingError) as info, org_session(tenants.a, engine=tenants.console) as s:
        s.execute(
            text(f"UPDATE {table} SET organization_id = NULL WHERE organization_id = :a"), {"a": tenants.a}
        )
    assert _refused(info.value)
    with service_session(engine=tenants.service) as s:
        assert _orgs_in(s, table).count(None) == 1


def test_without_an_organization_nothing_is_visible(tenants: Tenants) -> None:
    # A brand-new connection that never set anything: current_setting(..., true) is NULL.
    fresh = create_engine(tenants.console.url, poolclass=NullPool)
    with fresh.connect() as conn:
        assert (
            conn.execute(text("SELECT current_setting('app.current_organization_id', true)")).scalar() is None
        )
        for table in PROTECTED_TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    fresh.dispose()
    # A pooled connection after a scoped transaction ended: the setting reads ''.
    with tenants.console.connect() as conn:
        with conn.begin():
            conn.execute(
                text("SELECT set_config('app.current_organization_id', :o, true)"), {"o": str(tenants.a)}
            )
            assert conn.execute(text("SELECT count(*) FROM photos")).scalar() == 1
        assert (
            conn.execute(text("SELECT current_setting('app.current_organization_id', true)")).scalar() == ""
        )
        for table in PROTECTED_TABLES:
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
        assert _refused(info.value)


def test_an_org_scope_does_not_leak_into_the_next_transaction(tenants: Tenants) -> None:
    """Pooled connections are reused: org A's scope must not survive into org B's session or a bare one."""
    single = create_engine(tenants.console.url, pool_size=1, max_overflow=0)
    try:
        with org_session(tenants.a, engine=single) as s:
            assert _orgs_in(s, "photos") == [tenants.a]
        with org_session(tenants.b, engine=single) as s:
            assert _orgs_in(s, "photos") == [tenants.b]
        with single.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM photos")).scalar() == 0
    finally:
        single.dispose()


# What only a table's owner (or a superuser) may do: each would switch isolation off for the console.
OWNER_ONLY = {
    "disable": "ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    "no force": "ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
    "drop policy": "DROP POLICY {policy} ON {table}",
    "alter policy": "ALTER POLICY {policy} ON {table} USING (true)",
    "add policy": "CREATE POLICY everything ON {table} USING (true) WITH CHECK (true)",
    "take ownership": "ALTER TABLE {table} OWNER TO {console}",
}


@pytest.mark.parametrize("change", list(OWNER_ONLY))
def test_the_console_role_cannot_switch_row_level_security_off(tenants: Tenants, change: str) -> None:
    with tenants.service.connect() as conn:
        states = table_rls(conn)
    for table in PROTECTED_TABLES:
        statement = OWNER_ONLY[change].format(table=table, policy=states[table].policies[-1],
                                              console=tenants.db.console_role)
        with pytest.raises(ProgrammingError) as info, tenants.console.begin() as conn:
            conn.execute(text(statement))
        assert _refused(info.value, "must be owner"), (statement, info.value)
    with tenants.service.connect() as conn:
        assert unprotected_tables(conn) == []
        assert table_rls(conn) == states


def test_the_console_role_cannot_become_the_service_role_or_widen_itself(tenants: Tenants) -> None:
    db = tenants.db
    for statement, words in (
        (f"SET ROLE {db.service_role}", "permission denied to set role"),
        (f"SET SESSION AUTHORIZATION {db.service_role}", "permission denied to set session authorization"),
        (f"ALTER ROLE {db.console_role} BYPASSRLS", "must be superuser"),
        (f"GRANT {db.service_role} TO {db.console_role}", "must have admin option"),
        ("TRUNCATE photos", "permission denied for table photos"),
    ):
        with pytest.raises(ProgrammingError) as info, tenants.console.begin() as conn:
            conn.execute(text(statement))
        assert _refused(info.value, words), (statement, info.value)


def test_a_superuser_is_reported_as_bypassing(tenants: Tenants) -> None:
    with tenants.db.admin.connect() as conn:
        assert role_bypasses_rls(conn) is True
        assert unprotected_tables(conn) == []
