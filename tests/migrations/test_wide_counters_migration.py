"""Migration 0007 widens the counters on existing data, on both databases: rows, values and every tag's link to
its result survive the upgrade (SQLite copies the tables), a 30-day wait fits afterwards, and downgrade
narrows back (capping what INTEGER cannot hold on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.migrate import downgrade, upgrade

THIRTY_DAYS_MS = 30 * 86_400_000
INT_MAX = 2**31 - 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wide.db'}"
    return str(request.getfixturevalue("pg_url"))


def _seed(engine: Engine) -> None:
    """One organization, photo, result (with two tags) and rollup row at 0006."""
    with engine.begin() as conn:
        org = conn.execute(text(
            "INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
            " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        photo = conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, 'h', 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'completed', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org}).scalar_one()
        result = conn.execute(text(
            "INSERT INTO ai_processing_results (organization_id, photo_id, ai_provider, model, status, tags,"
            " tag_count, api_cost_micros, input_tokens, output_tokens, units, queue_wait_time_ms,"
            " provider_response_time_ms, total_processing_time_ms, retry_count, trace, created_at)"
            " VALUES (:org, :photo, 'local', 'm', 'completed', '[]', 2, 5, 1300, 60, 1, 2000, 120, 150, 0, '[]',"
            " CURRENT_TIMESTAMP) RETURNING id"), {"org": org, "photo": photo}).scalar_one()
        for label in ("cat", "pet"):
            conn.execute(text(
                "INSERT INTO photo_tags (organization_id, photo_id, result_id, label, confidence, source,"
                " review_state, created_at) VALUES (:org, :photo, :r, :l, 0.9, 'ai', 'accepted', CURRENT_TIMESTAMP)"),
                {"org": org, "photo": photo, "r": result, "l": label})
        conn.execute(text(
            "INSERT INTO processing_rollups_hourly (organization_id, hour, ai_provider, results_count,"
            " completed_count, needs_review_count, failed_count, retry_count_sum, tag_count, cost_micros,"
            " input_tokens, output_tokens, units, confidence_sum, confidence_count, latency_ms_sum,"
            " queue_wait_ms_sum, " + ", ".join(f"latency_b{i}, wait_b{i}" for i in range(10)) + ")"
            " VALUES (:org, CURRENT_TIMESTAMP, 'local', 1, 1, 0, 0, 0, 2, 5, 1300, 60, 1, 0.9, 1, 120, 2000, "
            + ", ".join("0, 0" for _ in range(10)) + ")"), {"org": org})


def _types(engine: Engine, table: str, columns: tuple[str, ...]) -> set[str]:
    return {str(c["type"]) for c in inspect(engine).get_columns(table) if c["name"] in columns}


def _snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as conn:
        return (
            [tuple(r) for r in conn.execute(text(
                "SELECT id, photo_id, input_tokens, output_tokens, units, queue_wait_time_ms,"
                " provider_response_time_ms, total_processing_time_ms FROM ai_processing_results"))],
            [tuple(r) for r in conn.execute(text("SELECT id, label, result_id FROM photo_tags ORDER BY id"))],
            [tuple(r) for r in conn.execute(text(
                "SELECT results_count, tag_count, queue_wait_ms_sum FROM processing_rollups_hourly"))],
        )


def test_upgrade_keeps_the_data_and_links_and_downgrade_narrows_back(url: str) -> None:
    upgrade(url, "0006")
    engine = make_engine(url)
    try:
        _seed(engine)
        before = _snapshot(engine)
        assert all(t[2] is not None for t in before[1])
        upgrade(url, "0007")
        assert _snapshot(engine) == before  # every tag still points at its result
        assert _types(engine, "ai_processing_results", ("queue_wait_time_ms", "input_tokens")) == {"BIGINT"}
        assert _types(engine, "ai_provider_health", ("response_time_ms",)) == {"BIGINT"}
        assert _types(engine, "processing_rollups_hourly", ("results_count", "wait_b9")) == {"BIGINT"}
        with engine.begin() as conn:
            conn.execute(text("UPDATE ai_processing_results SET queue_wait_time_ms = :w"), {"w": THIRTY_DAYS_MS})
            assert conn.execute(text("SELECT queue_wait_time_ms FROM ai_processing_results")).scalar() \
                == THIRTY_DAYS_MS
        downgrade(url, "0006")
        assert _types(engine, "ai_processing_results", ("queue_wait_time_ms", "input_tokens")) == {"INTEGER"}
        with engine.connect() as conn:
            wait = conn.execute(text("SELECT queue_wait_time_ms FROM ai_processing_results")).scalar()
        # PostgreSQL's INTEGER cannot hold the wait: capped. SQLite's INTEGER holds 64 bits whatever it is named.
        assert wait == (INT_MAX if engine.dialect.name == "postgresql" else THIRTY_DAYS_MS)
        assert _snapshot(engine)[1] == before[1]
    finally:
        engine.dispose()


def test_upgrading_sqlite_through_every_table_copy_keeps_each_link(url: str) -> None:
    """0004 and 0007 copy the result and tag tables on SQLite; no tag loses its result, no correction its tag."""
    upgrade(url, "0003")
    engine = make_engine(url)
    try:
        _seed(engine)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO corrections (organization_id, photo_id, tag_id, action, created_at)"
                " SELECT organization_id, photo_id, id, 'reject', CURRENT_TIMESTAMP FROM photo_tags"))
            corrections = conn.execute(text("SELECT id, tag_id FROM corrections ORDER BY id")).all()
        before = _snapshot(engine)
        upgrade(url, "head")
        assert _snapshot(engine)[1] == before[1]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id, tag_id FROM corrections ORDER BY id")).all() == corrections
            if engine.dialect.name == "sqlite":
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # a new connection: the engine's
    finally:
        engine.dispose()
