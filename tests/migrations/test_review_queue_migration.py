"""Migration 0009 on both databases: the review tables arrive on a database with data, their constraints hold
(one claim per photo, one review per claim token, a reject needs a reason and only a reject has one, one
ground-truth row per photo and label), they are protected by row-level security on PostgreSQL, and downgrade
removes them without touching the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.rls import table_rls
from aiconsole.platform.migrate import downgrade, upgrade

TABLES = {"review_claims", "reviews", "review_decisions", "ground_truth"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.db'}"
    return str(request.getfixturevalue("pg_url"))


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        user = conn.execute(text(
            "INSERT INTO users (organization_id, email, display_name, role, is_active, failed_logins, created_at)"
            " VALUES (:org, 'r@a.test', 'R', 'reviewer', true, 0, CURRENT_TIMESTAMP) RETURNING id"),
            {"org": org}).scalar_one()
        photo = conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, 'h', 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'needs_review', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org}).scalar_one()
    return {"org": org, "user": user, "photo": photo}


CLAIM = ("INSERT INTO review_claims (organization_id, photo_id, reviewer_id, token, queue_order, claimed_at,"
         " expires_at) VALUES (:org, :photo, :user, :token, 'oldest', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
REVIEW = ("INSERT INTO reviews (organization_id, photo_id, reviewer_id, claim_token, queue_order, claimed_at,"
          " submitted_at) VALUES (:org, :photo, :user, :token, 'random', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
          " RETURNING id")
DECISION = ("INSERT INTO review_decisions (organization_id, review_id, photo_id, action, reason, created_at)"
            " VALUES (:org, :review, :photo, :action, :reason, CURRENT_TIMESTAMP)")
TRUTH = ("INSERT INTO ground_truth (organization_id, photo_id, label, source, created_at)"
         " VALUES (:org, :photo, :label, :source, CURRENT_TIMESTAMP)")


def _refused(engine: Engine, sql: str, params: dict[str, object], constraint: str) -> None:
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert constraint in str(info.value), info.value


def test_0009_creates_constrained_review_tables_and_downgrade_removes_them(url: str) -> None:
    upgrade(url, "0008")
    engine = make_engine(url)
    try:
        ids = _seed(engine)
        upgrade(url, "0009")
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.begin() as conn:
            conn.execute(text(CLAIM), {**ids, "token": "t1"})
            review = conn.execute(text(REVIEW), {**ids, "token": "t1"}).scalar_one()
            conn.execute(text(DECISION), {**ids, "review": review, "action": "reject", "reason": "too_generic"})
            conn.execute(text(DECISION), {**ids, "review": review, "action": "approve", "reason": None})
            conn.execute(text(TRUTH), {**ids, "label": "cat", "source": "review"})
        _refused(engine, CLAIM, {**ids, "token": "t2"}, "photo_id")  # one claim per photo
        _refused(engine, REVIEW, {**ids, "token": "t1"}, "claim_token")  # one review per claim
        base, needs_reason = {**ids, "review": review}, "ck_review_decisions_reject_has_reason"
        _refused(engine, DECISION, {**base, "action": "reject", "reason": None}, needs_reason)
        _refused(engine, DECISION, {**base, "action": "approve", "reason": "wrong"}, needs_reason)
        _refused(engine, DECISION, {**base, "action": "reject", "reason": "ugly"}, "ck_review_decisions_reason")
        _refused(engine, DECISION, {**base, "action": "merge", "reason": None}, "ck_review_decisions_action")
        _refused(engine, TRUTH, {**ids, "label": "cat", "source": "review"}, "label")
        _refused(engine, TRUTH, {**ids, "label": "dog", "source": "guess"}, "ck_ground_truth_source")
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                states = table_rls(conn)
            assert all(states[t].protected and states[t].policies == ("tenant_isolation",) for t in TABLES)
        downgrade(url, "0008")
        assert not TABLES & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM photos")).scalar_one() == "needs_review"
        upgrade(url)
    finally:
        engine.dispose()
