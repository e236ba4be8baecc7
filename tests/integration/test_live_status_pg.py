"""Live Status on PostgreSQL specifically: percentile_cont vs the portable percentile, UTC hours under a
non-UTC session time zone, and the whole snapshot under row-level security as a non-superuser role."""

from __future__ import annotations

import importlib.util
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, literal, select, text
from sqlalchemy.orm import Session

from aiconsole.live import status as ls
from aiconsole.platform.db import dispose_engines, get_engine, org_session
from aiconsole.platform.db.sql import grouped_percentiles, hour_floor
from aiconsole.platform.db.types import UTCDateTime
from aiconsole.platform.settings import Settings, get_settings

pytestmark = pytest.mark.postgres


def _scenario() -> ModuleType:
    # The hand-worked scenario lives with the unit tests; load it by path (tests/ is not a package).
    path = Path(__file__).resolve().parent.parent / "unit" / "test_live_status.py"
    spec = importlib.util.spec_from_file_location("live_status_scenario", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 101, 1000])
def test_native_and_portable_percentiles_agree(pg_settings: Settings, n: int) -> None:
    rng = random.Random(n)
    values = [rng.choice([rng.randint(1, 50), rng.randint(1, 100_000)]) for _ in range(n)]
    quantiles = (0.0, 0.05, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)
    table = Table("pct_probe", MetaData(), Column("g", String), Column("v", Integer))
    with Session(get_engine()) as s:
        table.create(s.connection())
        s.execute(table.insert(), [{"g": "a" if i % 4 else "b", "v": v} for i, v in enumerate(values)])
        native = grouped_percentiles(s, value=table.c.v, group=table.c.g, where=[], quantiles=quantiles,
                                     method="native")
        portable = grouped_percentiles(s, value=table.c.v, group=table.c.g, where=[], quantiles=quantiles,
                                       method="portable")
    assert native.keys() == portable.keys()
    for g in native:
        assert native[g] == pytest.approx(portable[g], rel=1e-12, abs=1e-9)
        group_values = [v for i, v in enumerate(values) if ("a" if i % 4 else "b") == g]
        assert portable[g] == pytest.approx(tuple(np.percentile(group_values, [q * 100 for q in quantiles])))


def test_hour_floor_is_utc_whatever_the_session_time_zone(pg_settings: Settings) -> None:
    # Kolkata is +05:30: a date_trunc in the session zone would answer 13:30 UTC.
    with Session(get_engine()) as s:
        s.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        got = s.execute(select(hour_floor(literal(datetime(2026, 11, 26, 13, 45, tzinfo=UTC), UTCDateTime()))))
        assert got.scalar_one() == datetime(2026, 11, 26, 13, tzinfo=UTC)


@pytest.fixture
def app_role_settings(pg_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A LOGIN role without superuser or BYPASSRLS on the test database: RLS applies to it."""
    role = f"aict_app_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    try:
        yield role
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_snapshot_under_row_level_security(app_role_settings: str, pg_db_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = _scenario()
    acme, other = scenario.seed(get_settings())
    as_superuser = ls.live_snapshot(organization_id=acme, now=scenario.NOW)

    user = pg_db_url.split("://", 1)[1].split("@", 1)[0]
    app_url = pg_db_url.replace(f"://{user}@", f"://{app_role_settings}@")
    monkeypatch.setenv("AICONSOLE_DATABASE_URL", app_url)
    monkeypatch.setenv("AICONSOLE_SERVICE_DATABASE_URL", pg_db_url)  # service work: the tables' owner
    get_settings.cache_clear()
    dispose_engines()
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT rolbypassrls OR rolsuper FROM pg_roles "
                                 "WHERE rolname = current_user")).scalar_one() is False

    with org_session(acme) as s:  # RLS really binds this role: an unfiltered count sees Acme only
        assert s.execute(text("SELECT count(DISTINCT organization_id) FROM photos")).scalar_one() == 1

    bound = ls.live_snapshot(organization_id=acme, now=scenario.NOW)
    assert bound.status == as_superuser.status
    assert bound.providers == as_superuser.providers
    # The platform-wide google-vision check (organization_id NULL) is still visible to the org session.
    gv = {p.provider: p for p in bound.providers.providers}["google-vision"]
    assert (gv.status, gv.status_source) == ("down", "check")
    assert bound.queue.counts == as_superuser.queue.counts
    assert bound.cost.projected_month_micros == as_superuser.cost.projected_month_micros
    assert ls.status_cards(organization_id=other, now=scenario.NOW).pending == 1
