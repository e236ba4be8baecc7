"""Migration 0013 on both databases: quality_settings and double_reviews arrive on a database with reviews,
their constraints hold (a share in 0..1, versions from 1, one double review per photo, known statuses), the
queue orders accept 'second_review', deleting the first review takes the routing with it while deleting the
second only unlinks it, row-level security protects both tables on PostgreSQL, and downgrade removes them and
the second reviews without touching the first ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.rls import table_rls
from aiconsole.platform.migrate import downgrade, upgrade

TABLES = {"quality_settings", "double_reviews"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agreement.db'}"
    return str(request.getfixturevalue("pg_url"))


REVIEW = ("INSERT INTO reviews (organization_id, photo_id, reviewer_id, claim_token, queue_order, claimed_at,"
          " submitted_at) VALUES (:org, :photo, NULL, :token, :order, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
          " RETURNING id")
DECISION = ("INSERT INTO review_decisions (organization_id, review_id, photo_id, action, label_before, label_after,"
            " created_at) VALUES (:org, :review, :photo, 'approve', 'cat', 'cat', CURRENT_TIMESTAMP)")
SETTING = ("INSERT INTO quality_settings (organization_id, double_review_share, version, updated_at)"
           " VALUES (:org, :share, :version, CURRENT_TIMESTAMP)")
DOUBLE = ("INSERT INTO double_reviews (organization_id, photo_id, first_review_id, second_review_id, status,"
          " created_at) VALUES (:org, :photo, :first, :second, :status, CURRENT_TIMESTAMP) RETURNING id")


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        photo = conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, 'h', 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'completed', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org}).scalar_one()
        first = conn.execute(text(REVIEW), {"org": org, "photo": photo, "token": "t1", "order": "random"}
                             ).scalar_one()
    return {"org": org, "photo": photo, "first": first}


def _refused(engine: Engine, sql: str, params: dict[str, object], constraint: str) -> None:
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert constraint in str(info.value), info.value


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_0013_creates_agreement_tables_widens_orders_and_downgrade_removes_them(url: str) -> None:
    upgrade(url, "0012")
    engine = make_engine(url)
    try:
        ids = _seed(engine)
        _refused(engine, REVIEW, {**ids, "token": "t0", "order": "second_review"}, "ck_reviews_queue_order")
        upgrade(url, "0013")
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.begin() as conn:
            second = conn.execute(text(REVIEW), {**ids, "token": "t2", "order": "second_review"}).scalar_one()
            conn.execute(text(DECISION), {**ids, "review": second})
            conn.execute(text(SETTING), {**ids, "share": 0.05, "version": 1})
            conn.execute(text(DOUBLE), {**ids, "second": second, "status": "reviewed"})
        _refused(engine, REVIEW, {**ids, "token": "t3", "order": "sideways"}, "ck_reviews_queue_order")
        _refused(engine, SETTING, {**ids, "share": 0.5, "version": 1}, "organization_id")  # one row per org
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM quality_settings"))
        _refused(engine, SETTING, {**ids, "share": 1.5, "version": 1}, "ck_quality_settings_double_review_share")
        _refused(engine, SETTING, {**ids, "share": -0.1, "version": 1}, "ck_quality_settings_double_review_share")
        _refused(engine, SETTING, {**ids, "share": 0.5, "version": 0}, "ck_quality_settings_version")
        _refused(engine, DOUBLE, {**ids, "second": None, "status": "waiting"}, "photo_id")  # once per photo
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM double_reviews"))
        _refused(engine, DOUBLE, {**ids, "second": None, "status": "maybe"}, "ck_double_reviews_status")
        with engine.begin() as conn:
            conn.execute(text(DOUBLE), {**ids, "second": second, "status": "reviewed"})
            conn.execute(text("DELETE FROM reviews WHERE id = :second"), {"second": second})
        assert _count(engine, "SELECT count(*) FROM double_reviews WHERE second_review_id IS NULL") == 1
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM reviews WHERE id = :first"), ids)
        assert _count(engine, "SELECT count(*) FROM double_reviews") == 0
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                states = table_rls(conn)
            assert all(states[t].protected and states[t].policies == ("tenant_isolation",) for t in TABLES)
        # Downgrade with a second review (and its decision) present: they go, a first review stays.
        with engine.begin() as conn:
            first = conn.execute(text(REVIEW), {**ids, "token": "t4", "order": "oldest"}).scalar_one()
            second = conn.execute(text(REVIEW), {**ids, "token": "t5", "order": "second_review"}).scalar_one()
            conn.execute(text(DECISION), {**ids, "review": second})
            conn.execute(text(DOUBLE), {**ids, "first": first, "second": second, "status": "reviewed"})
        downgrade(url, "0012")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert _count(engine, "SELECT count(*) FROM reviews") == 1
        assert _count(engine, "SELECT count(*) FROM review_decisions") == 0
        _refused(engine, REVIEW, {**ids, "token": "t6", "order": "second_review"}, "ck_reviews_queue_order")
        upgrade(url)
    finally:
        engine.dispose()
