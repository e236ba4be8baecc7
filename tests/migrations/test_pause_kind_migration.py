"""Migration 0005 classifies the pauses that exist when it runs from their reason texts, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.migrate import downgrade, upgrade

REASONS = {
    "Daily budget of $5.00 reached ($5.01 spent today).": "daily_budget",
    "Monthly budget of $100.00 reached ($100.20 spent this month).": "monthly_budget",
    "Provider circuit open: gemini failed 80% of recent calls and no fallback provider is configured.":
        "circuit_open",
    "Provider disabled: gemini is disabled for this organization and no enabled fallback provider is configured.":
        "provider_disabled",
    "Paused by ops@acme.test: Daily budget of the team is under review": "manual",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pause_kind.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_existing_pauses_get_their_kind_and_running_orgs_none(url: str) -> None:
    upgrade(url, "0004")
    engine = make_engine(url)
    rows = [*((reason, True) for reason in REASONS), (None, False)]
    with engine.begin() as conn:
        for i, (reason, paused) in enumerate(rows):
            org = conn.execute(text(
                "INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                " VALUES (:n, :n, 'UTC', false, CURRENT_TIMESTAMP) RETURNING id"), {"n": f"org{i}"}).scalar_one()
            conn.execute(text(
                "INSERT INTO pipeline_config (organization_id, active_provider, active_model, accept_threshold,"
                " reject_threshold, label_overrides, max_retries, worker_concurrency, paused, pause_reason,"
                " version, updated_at) VALUES (:org, 'local', 'local-analyzer-v1', 0.8, 0.4, '{}', 3, 8, :p, :r,"
                " 1, CURRENT_TIMESTAMP)"), {"org": org, "p": paused, "r": reason})
    upgrade(url, "0005")
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT pause_reason, pause_kind FROM pipeline_config")).all())
    assert kinds == {**REASONS, None: None}
    downgrade(url, "0004")
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM pipeline_config")).keys()
    assert "pause_kind" not in columns
    engine.dispose()
