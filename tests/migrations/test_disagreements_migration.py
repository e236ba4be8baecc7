"""Migration 0014 on both databases: photo_disagreements, disagreement_refresh and
quality_settings.disagreement_threshold arrive on a database with quality settings (an existing row gets 0.5),
their constraints hold (Jaccard and threshold in 0..1, two sources or more, one fact per photo), deleting a
photo takes its fact with it, row-level security protects both tables on PostgreSQL, and downgrade removes
them and gives back the disagreement order's claims while its reviews stay."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.rls import table_rls
from aiconsole.platform.migrate import downgrade, upgrade

TABLES = {"photo_disagreements", "disagreement_refresh"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'disagreements.db'}"
    return str(request.getfixturevalue("pg_url"))


FACT = ("INSERT INTO photo_disagreements (photo_id, organization_id, jaccard, sources, result_a_id, result_b_id,"
        " computed_at) VALUES (:photo, :org, :jaccard, :sources, 1, 2, CURRENT_TIMESTAMP)")
REFRESH = ("INSERT INTO disagreement_refresh (organization_id, through_created_at, through_result_id, refreshed_at)"
           " VALUES (:org, NULL, 0, CURRENT_TIMESTAMP)")
CLAIM = ("INSERT INTO review_claims (organization_id, photo_id, reviewer_id, token, queue_order, claimed_at,"
         " expires_at) VALUES (:org, :photo, :user, :token, 'disagreement', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
REVIEW = ("INSERT INTO reviews (organization_id, photo_id, reviewer_id, claim_token, queue_order, claimed_at,"
          " submitted_at) VALUES (:org, :photo, NULL, 'r1', 'disagreement', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        user = conn.execute(text(
            "INSERT INTO users (organization_id, email, display_name, role, is_active, failed_logins, created_at)"
            " VALUES (:org, 'r@a.example.com', 'R', 'reviewer', true, 0, CURRENT_TIMESTAMP) RETURNING id"),
            {"org": org}).scalar_one()
        photos = [conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, :h, 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'completed', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org, "h": f"h{i}"}).scalar_one() for i in range(2)]
        conn.execute(text("INSERT INTO quality_settings (organization_id, double_review_share, version, updated_at)"
                          " VALUES (:org, 0.05, 1, CURRENT_TIMESTAMP)"), {"org": org})
    return {"org": org, "user": user, "photo": photos[0], "other": photos[1]}


def _refused(engine: Engine, sql: str, params: Mapping[str, object], constraint: str) -> None:
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert constraint in str(info.value), info.value


def _one(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_0014_creates_disagreement_tables_and_threshold_and_downgrade_removes_them(url: str) -> None:
    upgrade(url, "0013")
    engine = make_engine(url)
    try:
        ids = _seed(engine)
        upgrade(url, "0014")
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert _one(engine, "SELECT disagreement_threshold FROM quality_settings") == 0.5
        _refused(engine, "UPDATE quality_settings SET disagreement_threshold = 1.5", {},
                 "ck_quality_settings_disagreement_threshold")
        with engine.begin() as conn:
            conn.execute(text(FACT), {**ids, "jaccard": 0.25, "sources": 2})
            conn.execute(text(REFRESH), ids)
            conn.execute(text(CLAIM), {**ids, "token": "c1"})
            conn.execute(text(REVIEW), ids)
        _refused(engine, FACT, {**ids, "jaccard": 0.5, "sources": 2}, "photo_id")  # one fact per photo
        _refused(engine, FACT, {**ids, "photo": ids["other"], "jaccard": 1.1, "sources": 2},
                 "ck_photo_disagreements_jaccard")
        _refused(engine, FACT, {**ids, "photo": ids["other"], "jaccard": 0.5, "sources": 1},
                 "ck_photo_disagreements_sources")
        _refused(engine, REFRESH, ids, "organization_id")  # one watermark per organization
        with engine.begin() as conn:
            conn.execute(text(FACT), {**ids, "photo": ids["other"], "jaccard": 0.0, "sources": 3})
            if engine.dialect.name == "sqlite":
                conn.execute(text("PRAGMA foreign_keys = ON"))
            conn.execute(text("DELETE FROM photos WHERE id = :other"), ids)
        assert _one(engine, "SELECT count(*) FROM photo_disagreements") == 1
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                states = table_rls(conn)
            assert all(states[t].protected and states[t].policies == ("tenant_isolation",) for t in TABLES)
        downgrade(url, "0013")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert "disagreement_threshold" not in {c["name"] for c in inspect(engine).get_columns("quality_settings")}
        assert _one(engine, "SELECT count(*) FROM review_claims") == 0
        assert _one(engine, "SELECT count(*) FROM reviews") == 1
        upgrade(url)
    finally:
        engine.dispose()
