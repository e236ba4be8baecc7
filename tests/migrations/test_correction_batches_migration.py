"""Migration 0010 on both databases: the batch-correction tables arrive on a database with data, their
constraints hold (known templates, statuses, item actions and undo results; items go with their batch, an item
outlives its tag), ground truth may come from a batch, the tables are protected by row-level security on
PostgreSQL, and downgrade removes them, turns batch ground truth into review ground truth and restores the
three sources, without touching the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.rls import table_rls
from aiconsole.platform.migrate import downgrade, upgrade

TABLES = {"correction_batches", "correction_batch_items"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'batches.db'}"
    return str(request.getfixturevalue("pg_url"))


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        user = conn.execute(text(
            "INSERT INTO users (organization_id, email, display_name, role, is_active, failed_logins, created_at)"
            " VALUES (:org, 'a@a.test', 'A', 'admin', true, 0, CURRENT_TIMESTAMP) RETURNING id"),
            {"org": org}).scalar_one()
        photo = conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, 'h', 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'completed', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org}).scalar_one()
        tag = conn.execute(text(
            "INSERT INTO photo_tags (organization_id, photo_id, label, confidence, source, review_state, created_at)"
            " VALUES (:org, :photo, 'cat', 0.5, 'ai', 'needs_review', CURRENT_TIMESTAMP) RETURNING id"),
            {"org": org, "photo": photo}).scalar_one()
        conn.execute(text(TRUTH), {"org": org, "photo": photo, "label": "cat", "source": "review"})
    return {"org": org, "user": user, "photo": photo, "tag": tag}


BATCH = ("INSERT INTO correction_batches (organization_id, template, params, selection, status, matched, processed,"
         " changed, failed, restored, kept, created_by, created_at) VALUES (:org, :template, '{}', '{}', :status,"
         " 1, 0, 0, 0, 0, 0, :user, CURRENT_TIMESTAMP) RETURNING id")
ITEM = ("INSERT INTO correction_batch_items (organization_id, batch_id, tag_id, photo_id, action, before, after,"
        " undo_result, created_at) VALUES (:org, :batch, :tag, :photo, :action, '{\"label\": \"cat\"}',"
        " '{\"label\": \"kitten\"}', :undo, CURRENT_TIMESTAMP)")
TRUTH = ("INSERT INTO ground_truth (organization_id, photo_id, label, source, created_at)"
         " VALUES (:org, :photo, :label, :source, CURRENT_TIMESTAMP)")


def _refused(engine: Engine, sql: str, params: dict[str, object], constraint: str) -> None:
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text(sql), params)
    assert constraint in str(info.value), info.value


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_0010_creates_constrained_batch_tables_and_downgrade_removes_them(url: str) -> None:
    upgrade(url, "0009")
    engine = make_engine(url)
    try:
        ids = _seed(engine)
        upgrade(url, "0010")
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.begin() as conn:
            batch = conn.execute(text(BATCH), {**ids, "template": "rename", "status": "running"}).scalar_one()
            conn.execute(text(ITEM), {**ids, "batch": batch, "action": "rename", "undo": None})
            conn.execute(text(ITEM), {**ids, "batch": batch, "action": "photo", "undo": "kept"})
            conn.execute(text(TRUTH), {**ids, "label": "pet", "source": "batch"})
        base = {**ids, "batch": batch}
        _refused(engine, BATCH, {**ids, "template": "merge", "status": "running"}, "ck_correction_batches_template")
        _refused(engine, BATCH, {**ids, "template": "add", "status": "paused"}, "ck_correction_batches_status")
        _refused(engine, ITEM, {**base, "action": "merge", "undo": None}, "ck_correction_batch_items_action")
        _refused(engine, ITEM, {**base, "action": "add", "undo": "maybe"}, "ck_correction_batch_items_undo_result")
        _refused(engine, TRUTH, {**ids, "label": "dog", "source": "guess"}, "ck_ground_truth_source")
        # The 0009 indexes and unique key survive SQLite's rebuild of ground_truth for its new CHECK.
        _refused(engine, TRUTH, {**ids, "label": "cat", "source": "batch"}, "label")
        assert {i["name"] for i in inspect(engine).get_indexes("ground_truth")} >= {
            "ix_ground_truth_org_label", "ix_ground_truth_review_id", "ix_ground_truth_set_by"}
        with engine.begin() as conn:  # a deleted tag leaves its item (tag_id NULL); a deleted batch its items
            conn.execute(text("DELETE FROM photo_tags WHERE id = :tag"), ids)
            assert conn.execute(text("SELECT count(*) FROM correction_batch_items WHERE tag_id IS NULL"
                                     " AND batch_id = :batch"), base).scalar_one() == 2
            conn.execute(text("DELETE FROM correction_batches WHERE id = :batch"), base)
        assert _count(engine, "correction_batch_items") == 0
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                states = table_rls(conn)
            assert all(states[t].protected and states[t].policies == ("tenant_isolation",) for t in TABLES)
        downgrade(url, "0009")
        assert not TABLES & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            truth = conn.execute(text("SELECT label, source FROM ground_truth ORDER BY label")).all()
            assert [tuple(r) for r in truth] == [("cat", "review"), ("pet", "review")]
            assert conn.execute(text("SELECT status FROM photos")).scalar_one() == "completed"
        _refused(engine, TRUTH, {**ids, "label": "dog", "source": "batch"}, "ck_ground_truth_source")
        upgrade(url)
    finally:
        engine.dispose()
