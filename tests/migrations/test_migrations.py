"""Migrations: upgrade builds exactly the models' schema on SQLite and PostgreSQL, downgrade removes it,
the RLS revision covers exactly the org-scoped tables, and the runner's errors are clear."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.models import ORG_SCOPED_TABLES, Base
from aiconsole.platform.db.rls import PROTECTED_TABLES, table_rls, unprotected_tables
from aiconsole.platform.errors import AiconsoleError, ConfigError
from aiconsole.platform.migrate import (
    ROOT,
    current_revision,
    downgrade,
    head_revision,
    pending_revisions,
    render_item,
    safe_url,
    upgrade,
)

# SQLite cannot reflect the DESC in these indexes, so Alembic reports them as removed and re-added on every
# comparison. Their definitions are checked directly against sqlite_master in test_indexes_keep_order_and_where.
SQLITE_UNCOMPARABLE_INDEXES = {"ix_photos_pending_claim", "ix_photos_pending_priority"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, never-migrated database: SQLite file or fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(empty_url: str) -> Iterator[Engine]:
    """An engine on the empty database (disposed afterwards so PostgreSQL can drop it)."""
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def _model_diffs(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    diffs = compare_metadata(ctx, Base.metadata)
    if conn.dialect.name == "sqlite":
        diffs = [
            d
            for d in diffs
            if not (
                isinstance(d, tuple)
                and d[0] in ("add_index", "remove_index")
                and d[1].name in SQLITE_UNCOMPARABLE_INDEXES
            )
        ]
    return diffs


def _app_tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def test_upgrade_head_matches_the_models(db: Engine) -> None:
    upgrade(str(db.url.render_as_string(hide_password=False)))
    with db.connect() as conn:
        assert _app_tables(conn) == set(Base.metadata.tables)
        assert _model_diffs(conn) == []
    assert current_revision(db) == head_revision()
    assert pending_revisions(db) == []


def test_comparison_notices_a_schema_that_differs(db: Engine) -> None:
    """The no-difference check above can fail: a dropped index and column are reported."""
    upgrade(db.url.render_as_string(hide_password=False))
    with db.begin() as conn:
        conn.execute(text("DROP INDEX ix_corrections_org_created"))
        conn.execute(text("ALTER TABLE workers DROP COLUMN processed_count"))
    with db.connect() as conn:
        diffs = _model_diffs(conn)
    kinds = {(d[0], d[1].name) for d in diffs if isinstance(d, tuple) and d[0] == "add_index"}
    assert ("add_index", "ix_corrections_org_created") in kinds
    assert any(
        isinstance(d, tuple) and d[0] == "add_column" and d[3].name == "processed_count" for d in diffs
    )


def _unqualified(default: str | None, schema: str | None) -> str | None:
    # nextval('expected.t_id_seq') in the reference schema is nextval('t_id_seq') in public.
    return default.replace(f"'{schema}.", "'") if default and schema else default


def _snapshot(conn: Connection, schema: str | None = None) -> dict[str, Any]:
    """Everything reflection can tell about the schema, in comparable form."""
    ins = inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(set(ins.get_table_names(schema=schema)) - {"alembic_version"}):
        out[table] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], _unqualified(c.get("default"), schema))
                for c in ins.get_columns(table, schema)
            ],
            "pk": (
                ins.get_pk_constraint(table, schema)["name"],
                tuple(ins.get_pk_constraint(table, schema)["constrained_columns"]),
            ),
            "fks": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    fk.get("options", {}).get("ondelete"),
                )
                for fk in ins.get_foreign_keys(table, schema)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"])) for u in ins.get_unique_constraints(table, schema)
            ),
            "checks": sorted((c["name"], c["sqltext"]) for c in ins.get_check_constraints(table, schema)),
            "indexes": sorted(
                (
                    i["name"],
                    tuple(str(n) for n in i["column_names"]),
                    bool(i["unique"]),
                    str(i.get("column_sorting")),
                    str(i.get("dialect_options", {}).get("postgresql_where")),
                )
                for i in ins.get_indexes(table, schema)
            ),
        }
    return out


def test_migrated_schema_equals_create_all_in_every_detail(db: Engine, tmp_path: Path) -> None:
    """Names (naming convention), ON DELETE rules, CHECK texts, partial indexes: migration == models' DDL."""
    upgrade(db.url.render_as_string(hide_password=False))
    if db.dialect.name == "sqlite":
        reference = make_engine(f"sqlite:///{tmp_path / 'create_all.db'}")
        Base.metadata.create_all(reference)
        with db.connect() as conn, reference.connect() as ref:
            migrated, expected = _snapshot(conn), _snapshot(ref)
            index_sql = (
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
            )
            assert conn.execute(text(index_sql)).all() == ref.execute(text(index_sql)).all()
        reference.dispose()
    else:
        with db.begin() as conn:
            conn.execute(text("CREATE SCHEMA expected"))
            Base.metadata.create_all(conn.execution_options(schema_translate_map={None: "expected"}))
        with db.connect() as conn:
            migrated, expected = _snapshot(conn), _snapshot(conn, "expected")
            index_sql = (
                "SELECT indexname, replace(indexdef, ' ' || schemaname || '.', ' ') FROM pg_indexes"
                " WHERE schemaname = :s AND tablename <> 'alembic_version' ORDER BY indexname"
            )
            assert (
                conn.execute(text(index_sql), {"s": "public"}).all()
                == conn.execute(text(index_sql), {"s": "expected"}).all()
            )
    assert set(migrated) == set(Base.metadata.tables)
    for table in expected:
        assert migrated[table] == expected[table], table


def test_indexes_keep_order_and_where(db: Engine) -> None:
    upgrade(db.url.render_as_string(hide_password=False))
    with db.connect() as conn:
        if db.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()
        else:
            rows = conn.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
            ).all()
    ddl = {name: sql for name, sql in rows}
    claim = ddl["ix_photos_pending_claim"]
    assert "(organization_id, priority DESC, created_at)" in claim
    assert "WHERE" in claim and "'pending'" in claim
    order = ddl["ix_photos_pending_priority"]
    assert "(priority DESC, created_at, id)" in order and "WHERE" in order and "'pending'" in order
    lease = ddl["ix_photos_processing_lease"]
    assert "(lease_expires_at)" in lease and "WHERE" in lease and "'processing'" in lease


def test_check_constraints_are_enforced(db: Engine) -> None:
    upgrade(db.url.render_as_string(hide_password=False))
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP)"
            )
        )
    bad_role = (
        "INSERT INTO users (organization_id, email, display_name, role, is_active, failed_logins, created_at)"
        " SELECT id, 'x@a.test', 'X', 'wizard', true, 0, CURRENT_TIMESTAMP FROM organizations"
    )
    with pytest.raises(IntegrityError, match="ck_users_role"), db.begin() as conn:
        conn.execute(text(bad_role))
    with db.begin() as conn:
        conn.execute(text(bad_role.replace("'wizard'", "'admin'")))


def test_downgrade_to_base_removes_everything_and_upgrade_works_again(db: Engine) -> None:
    url = db.url.render_as_string(hide_password=False)
    upgrade(url)
    downgrade(url)
    with db.connect() as conn:
        assert _app_tables(conn) == set()
        if db.dialect.name == "postgresql":
            assert conn.execute(text("SELECT count(*) FROM pg_policy")).scalar() == 0
    assert current_revision(db) is None
    upgrade(url)
    with db.connect() as conn:
        assert _app_tables(conn) == set(Base.metadata.tables)
        assert _model_diffs(conn) == []
    assert pending_revisions(db) == []


def test_pending_and_current_revision_step_by_step(db: Engine) -> None:
    url = db.url.render_as_string(hide_password=False)
    revisions = [
        r.revision for r in reversed(list(ScriptDirectory(str(ROOT / "migrations")).walk_revisions()))
    ]
    assert revisions[:2] == ["0001", "0002"]
    assert current_revision(db) is None
    assert pending_revisions(db) == revisions
    upgrade(url, "0001")
    assert current_revision(db) == "0001"
    assert pending_revisions(db) == revisions[1:]
    upgrade(url)
    assert current_revision(db) == revisions[-1] == head_revision()
    assert pending_revisions(db) == []
    downgrade(url, "0001")
    assert pending_revisions(db) == revisions[1:]


def _rls_module() -> ModuleType:
    script = ScriptDirectory(str(ROOT / "migrations"))
    module = script.get_revision("0002").module
    assert module is not None
    return module


def later_tenant_tables() -> list[str]:
    """Tables that revisions after 0006 created and protected themselves (their RLS_TENANT_TABLES)."""
    script = ScriptDirectory(str(ROOT / "migrations"))
    return [t for r in script.walk_revisions() if r.module is not None
            for t in getattr(r.module, "RLS_TENANT_TABLES", ())]


def test_rls_migration_covers_exactly_the_org_scoped_tables() -> None:
    rls = _rls_module()
    listed = list(rls.TENANT_TABLES) + list(rls.SHARED_TABLES) + later_tenant_tables()
    assert len(listed) == len(set(listed)), "a table is listed twice"
    assert set(listed) == set(ORG_SCOPED_TABLES)
    nullable_org = {t for t in ORG_SCOPED_TABLES if Base.metadata.tables[t].c.organization_id.nullable}
    assert set(rls.SHARED_TABLES) == nullable_org


def test_rls_revision_is_a_no_op_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'norls.db'}"
    engine = make_engine(url)
    upgrade(url, "0001")
    with engine.connect() as conn:
        before = _snapshot(conn)
    upgrade(url, "0002")
    with engine.connect() as conn:
        assert _snapshot(conn) == before
    assert current_revision(engine) == "0002"
    engine.dispose()


@pytest.mark.postgres
def test_postgres_rls_is_on_exactly_for_org_tables_and_comes_off_on_downgrade(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        upgrade(pg_url)
        with engine.connect() as conn:
            states = table_rls(conn)
            assert unprotected_tables(conn) == []
            protected = {t for t, s in states.items() if s.enabled}
            assert protected == set(PROTECTED_TABLES)
            assert all(states[t].forced for t in PROTECTED_TABLES)
            assert states["audit_log"].policies == ("platform_rows_readable", "tenant_isolation")
            assert states["photos"].policies == ("tenant_isolation",)
        downgrade(pg_url, "0001")
        with engine.connect() as conn:
            assert not any(s.enabled or s.forced or s.policies for s in table_rls(conn).values())
            assert sorted(unprotected_tables(conn)) == sorted(PROTECTED_TABLES)
        upgrade(pg_url)
        with engine.connect() as conn:
            assert unprotected_tables(conn) == []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_upgrades_of_one_postgres_database_both_succeed(pg_url: str) -> None:
    """Workers starting together each run `upgrade`; the advisory lock makes the second one a no-op."""
    code = "import sys; from aiconsole.platform.migrate import upgrade; upgrade(sys.argv[1])"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AICONSOLE_") or k.startswith("AICONSOLE_TEST_")
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_url],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    engine = make_engine(pg_url)
    try:
        assert pending_revisions(engine) == []
    finally:
        engine.dispose()


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_autogenerate_writes_plain_sqlalchemy_types(tmp_path: Path) -> None:
    """New migrations must not import aiconsole: UTCDateTime is rendered as sa.DateTime(timezone=True)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'autogen.db'}")
    with engine.connect() as conn:
        ops = produce_migrations(MigrationContext.configure(conn), Base.metadata)
    code = render_python_code(ops.upgrade_ops, render_item=render_item)
    engine.dispose()
    assert "op.create_table('photos'" in code
    assert "sa.Column('created_at', sa.DateTime(timezone=True), nullable=False)" in code
    assert "aiconsole" not in code


def test_unreachable_postgres_names_the_url_without_its_password() -> None:
    url = "postgresql+psycopg://app:s3cret-pw@127.0.0.1:1/aiconsole"
    with pytest.raises(AiconsoleError) as info:
        upgrade(url)
    message = str(info.value)
    assert "Cannot reach the database at postgresql+psycopg://app:***@127.0.0.1:1/aiconsole" in message
    assert "s3cret-pw" not in message
    assert "AICONSOLE_DATABASE_URL" in message


def test_unopenable_sqlite_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(AiconsoleError, match="Cannot open the SQLite database"):
        upgrade(f"sqlite:///{blocker / 'sub' / 'aiconsole.db'}")


def test_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid"):
        upgrade("this is not a url")


def test_safe_url_masks_only_the_password() -> None:
    assert safe_url("postgresql+psycopg://u:pw@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert safe_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
