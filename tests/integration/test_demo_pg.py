"""The demo seed on PostgreSQL: the same data as on SQLite for the same seed, rollups equal to the results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from aiconsole.demo.seed import find_demo_organization, seed_demo
from aiconsole.pipeline.images import load_image_bytes
from aiconsole.platform.db import dispose_engines, get_engine, org_session, service_session
from aiconsole.platform.db.models import (
    PROVIDERS,
    AiProcessingResult,
    Correction,
    Organization,
    Photo,
    PhotoTag,
    ProcessingRollupHourly,
)
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import Settings

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 18, 15, 42, 7, 123456, tzinfo=UTC)
DAYS = 3


def _totals(settings: Settings) -> dict[str, Any]:
    org = find_demo_organization(settings=settings)
    r = AiProcessingResult
    with service_session(engine=get_engine(settings)) as s:
        per_provider = {p: (int(n), int(c), int(t)) for p, n, c, t in s.execute(
            select(r.ai_provider, func.count(), func.sum(r.api_cost_micros), func.sum(r.tag_count))
            .where(r.organization_id == org).group_by(r.ai_provider))}
        statuses = dict(s.execute(select(Photo.status, func.count()).where(Photo.organization_id == org)
                                  .group_by(Photo.status)).all())
        tags = dict(s.execute(select(PhotoTag.review_state, func.count()).where(PhotoTag.organization_id == org)
                              .group_by(PhotoTag.review_state)).all())
        corrections = s.scalar(select(func.count()).select_from(Correction).where(Correction.organization_id == org))
        shas = list(s.scalars(select(Photo.sha256).where(Photo.organization_id == org).order_by(Photo.sha256)))
    return {"providers": per_provider, "photos": statuses, "tags": tags, "corrections": corrections,
            "shas": shas}


def test_demo_seed_on_postgres_matches_sqlite(pg_settings: Settings, tmp_path: Path) -> None:
    summary = seed_demo(settings=pg_settings, days=DAYS, now=NOW)
    print(f"\n{DAYS}-day demo seed on PostgreSQL: {summary.seconds:.1f} s, {summary.results:,} results")
    pg = _totals(pg_settings)
    assert set(pg["providers"]) == set(PROVIDERS)
    assert summary.results == sum(n for n, _, _ in pg["providers"].values()) > 1_000 * DAYS
    assert pg["photos"]["pending"] == summary.pending == 200
    assert pg["tags"]["needs_review"] > 0 and pg["corrections"] > 0

    lite_settings = Settings(data_dir=tmp_path / "lite", database_url=None, redis_url=None)
    upgrade(lite_settings.resolved_database_url)
    seed_demo(settings=lite_settings, days=DAYS, now=NOW)
    try:
        assert _totals(lite_settings) == pg
    finally:
        dispose_engines()


def test_rollups_on_postgres_equal_the_results(pg_settings: Settings) -> None:
    summary = seed_demo(settings=pg_settings, days=DAYS, now=NOW)
    org = summary.organization_id
    direct_sql = text(
        "SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AS h, ai_provider, count(*), "
        "count(*) FILTER (WHERE status = 'failed'), sum(api_cost_micros), sum(retry_count), "
        "sum(provider_response_time_ms), sum(queue_wait_time_ms), count(avg_confidence) "
        "FROM ai_processing_results WHERE organization_id = :org GROUP BY 1, 2")
    h = ProcessingRollupHourly
    with service_session(engine=get_engine(pg_settings)) as s:
        # A session in a time zone with a half-hour offset must still get UTC hours.
        s.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        direct = {(row[0].replace(tzinfo=UTC), row[1]): tuple(int(v) for v in row[2:])
                  for row in s.execute(direct_sql, {"org": org})}
        rollups = list(s.scalars(select(h).where(h.organization_id == org)))
    assert len(rollups) == summary.rollup_rows == len(direct)
    for row in rollups:
        assert direct[(row.hour, row.ai_provider)] == (
            row.results_count, row.failed_count, row.cost_micros, row.retry_count_sum, row.latency_ms_sum,
            row.queue_wait_ms_sum, row.confidence_count)
        assert sum(getattr(row, f"latency_b{i}") for i in range(10)) == row.results_count
        assert sum(getattr(row, f"wait_b{i}") for i in range(10)) == row.results_count


def test_force_reseed_on_postgres_keeps_ids_from_the_sequences(pg_settings: Settings) -> None:
    first = seed_demo(settings=pg_settings, days=1, now=NOW)
    with pytest.raises(ConflictError, match="already exists"):
        seed_demo(settings=pg_settings, days=1, now=NOW)
    second = seed_demo(settings=pg_settings, days=1, now=NOW, force=True)
    engine = get_engine(pg_settings)
    with service_session(engine=engine) as s:
        assert s.get(Organization, first.organization_id) is None
        # Ordinary inserts after the seed take the next sequence values without colliding.
        org = Organization(name="After the demo", slug="after", timezone="UTC", created_at=NOW)
        s.add(org)
        s.flush()
        s.add(Photo(organization_id=org.id, sha256="c" * 64, storage_uri="photos/cc/c.jpg", filename="c.jpg",
                    content_type="image/jpeg", byte_size=1, width=1, height=1, created_at=NOW, updated_at=NOW))
        s.flush()
    # The demo org's own session reads its photos, and the stored queue files load.
    with org_session(second.organization_id, engine=engine) as s:
        uri = s.scalar(select(Photo.storage_uri).where(Photo.status == "pending").limit(1))
    assert uri is not None and load_image_bytes(uri, settings=pg_settings)
