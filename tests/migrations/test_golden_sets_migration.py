"""Migration 0012 on both databases: the golden-set tables arrive on a database with data, their constraints hold
(one version number per name and organization, versions from 1, a photo once per set), a deleted photo leaves
its copy in the set, deleting a validation run or a set takes its rows with it, row-level security protects
the tables on PostgreSQL, and downgrade removes them without touching the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.rls import table_rls
from aiconsole.platform.migrate import downgrade, upgrade

TABLES = {"golden_sets", "golden_set_items", "golden_set_runs"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'golden.db'}"
    return str(request.getfixturevalue("pg_url"))


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        photo = conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, 'h', 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'completed', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org}).scalar_one()
        run = conn.execute(text(
            "INSERT INTO validation_runs (organization_id, name, status, config, metrics, created_at)"
            " VALUES (:org, 'r', 'running', '{}', '{}', CURRENT_TIMESTAMP) RETURNING id"), {"org": org}).scalar_one()
    return {"org": org, "photo": photo, "run": run}


SET = ("INSERT INTO golden_sets (organization_id, name, version, description, selection, photo_count, label_count,"
       " label_counts, created_at) VALUES (:org, :name, :version, '', '{}', 1, 1, '{}', CURRENT_TIMESTAMP)"
       " RETURNING id")
ITEM = ("INSERT INTO golden_set_items (organization_id, golden_set_id, photo_id, sha256, filename, labels)"
        " VALUES (:org, :set, :photo, 'h', 'a.jpg', '[\"cat\"]')")
RUN = ("INSERT INTO golden_set_runs (organization_id, golden_set_id, validation_run_id, registered_at)"
       " VALUES (:org, :set, :run, CURRENT_TIMESTAMP)")


def _refused(engine: Engine, sql: str, params: dict[str, object], constraint: str) -> None:
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert constraint in str(info.value), info.value


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_0012_creates_constrained_golden_set_tables_and_downgrade_removes_them(url: str) -> None:
    upgrade(url, "0011")
    engine = make_engine(url)
    try:
        ids = _seed(engine)
        upgrade(url, "0012")
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.begin() as conn:
            first = conn.execute(text(SET), {**ids, "name": "cats", "version": 1}).scalar_one()
            second = conn.execute(text(SET), {**ids, "name": "cats", "version": 2}).scalar_one()
            conn.execute(text(ITEM), {**ids, "set": first})
            conn.execute(text(ITEM), {**ids, "set": second})
            conn.execute(text(RUN), {**ids, "set": first})
        _refused(engine, SET, {**ids, "name": "cats", "version": 2}, "version")  # one v2 of 'cats'
        _refused(engine, SET, {**ids, "name": "dogs", "version": 0}, "ck_golden_sets_version")
        _refused(engine, ITEM, {**ids, "set": first}, "photo_id")  # a photo once per set
        _refused(engine, RUN, {**ids, "set": first}, "validation_run_id")  # a run once per set
        # A deleted photo leaves the frozen copy; a deleted run releases; a deleted set takes its rows.
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM photos WHERE id = :photo"), ids)
        assert _count(engine, "SELECT count(*) FROM golden_set_items WHERE photo_id IS NULL AND sha256 = 'h'") == 2
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM validation_runs WHERE id = :run"), ids)
        assert _count(engine, "SELECT count(*) FROM golden_set_runs") == 0
        with engine.begin() as conn:
            conn.execute(text(RUN), {**ids, "set": second, "run": _seed_run(conn, ids["org"])})
            conn.execute(text("DELETE FROM golden_sets WHERE id = :set"), {"set": second})
        assert _count(engine, "SELECT count(*) FROM golden_set_items") == 1
        assert _count(engine, "SELECT count(*) FROM golden_set_runs") == 0
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                states = table_rls(conn)
            assert all(states[t].protected and states[t].policies == ("tenant_isolation",) for t in TABLES)
        downgrade(url, "0011")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert _count(engine, "SELECT count(*) FROM validation_runs") == 1
        upgrade(url)
    finally:
        engine.dispose()


def _seed_run(conn: Connection, org: int) -> int:
    return int(conn.execute(text(
        "INSERT INTO validation_runs (organization_id, name, status, config, metrics, created_at)"
        " VALUES (:org, 'r2', 'running', '{}', '{}', CURRENT_TIMESTAMP) RETURNING id"), {"org": org}).scalar_one())
