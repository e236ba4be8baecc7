"""Live Status data with known answers, on SQLite and PostgreSQL.

The scenario: "Acme" lives in America/New_York and it is 2026-11-26 02:10 UTC, i.e. 21:10 EST on
Wednesday 25 November. Its day started at 2026-11-25 05:00 UTC, yesterday at 2026-11-24 05:00 UTC,
"same time yesterday" is 2026-11-25 02:10 UTC, and the month started at 2026-11-01 04:00 UTC (still
EDT: DST ended at 02:00 that morning), so November lasts 30 days and 1 hour. Each result is written with
its rollup row, as the worker does; every expected figure below is worked out by hand in the comments.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aiconsole.live import status as ls
from aiconsole.pipeline import health_report
from aiconsole.platform import cache
from aiconsole.platform.db import get_engine, org_session, service_session
from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    AiProviderHealth,
    Organization,
    Photo,
    PipelineConfig,
    ProcessingRollupHourly,
    ProviderConfig,
)
from aiconsole.platform.db.sql import ceil_hour, floor_hour, hour_floor, percentile_from_histogram
from aiconsole.platform.errors import NotFound
from aiconsole.platform.settings import Settings

NOW = datetime(2026, 11, 26, 2, 10, tzinfo=UTC)
_seq = itertools.count(1)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def _bucket(value: int, bounds: tuple[int, ...]) -> int:
    return next((i for i, b in enumerate(bounds) if value <= b), len(bounds))


def add_org(session: Session, name: str, tz: str) -> int:
    org = Organization(name=name, slug=name.lower(), timezone=tz)
    session.add(org)
    session.flush()
    return org.id


def add_photo(session: Session, org: int, status: str, created: datetime,
              next_attempt: datetime | None = None) -> int:
    n = next(_seq)
    photo = Photo(organization_id=org, sha256=f"{n:064x}", storage_uri=f"file://{n}", filename=f"{n}.jpg",
                  content_type="image/jpeg", byte_size=100, width=10, height=10, status=status,
                  created_at=created, updated_at=created, next_attempt_at=next_attempt)
    session.add(photo)
    session.flush()
    return photo.id


def add_result(session: Session, org: int, photo: int, at: datetime, provider: str, status: str, *,
               cost: int = 0, conf: float | None = None, latency: int = 0, wait: int = 0) -> None:
    """One result plus its share of the hourly rollup, as the worker writes them together."""
    session.add(AiProcessingResult(
        organization_id=org, photo_id=photo, ai_provider=provider, model="m", status=status,
        avg_confidence=conf, min_confidence=conf, api_cost_micros=cost,
        provider_response_time_ms=latency, queue_wait_time_ms=wait, created_at=at,
    ))
    hour = floor_hour(at)
    roll = session.get(ProcessingRollupHourly, (org, hour, provider))
    if roll is None:
        roll = ProcessingRollupHourly(organization_id=org, hour=hour, ai_provider=provider)
        for column in ProcessingRollupHourly.__table__.columns:
            if column.name not in ("organization_id", "hour", "ai_provider"):
                setattr(roll, column.name, 0.0 if column.name == "confidence_sum" else 0)
        session.add(roll)
    roll.results_count += 1
    roll.completed_count += status == "completed"
    roll.needs_review_count += status == "needs_review"
    roll.failed_count += status == "failed"
    roll.cost_micros += cost
    if conf is not None:
        roll.confidence_sum += conf
        roll.confidence_count += 1
    roll.latency_ms_sum += latency
    roll.queue_wait_ms_sum += wait
    lb, wb = _bucket(latency, LATENCY_BUCKETS_MS), _bucket(wait, WAIT_BUCKETS_MS)
    setattr(roll, f"latency_b{lb}", getattr(roll, f"latency_b{lb}") + 1)
    setattr(roll, f"wait_b{wb}", getattr(roll, f"wait_b{wb}") + 1)
    session.flush()


def seed(settings: Settings) -> tuple[int, int]:
    """Acme (America/New_York) with the hand-worked scenario, and Other (UTC) whose rows must never show."""
    with service_session() as s:
        acme = add_org(s, "Acme", "America/New_York")
        other = add_org(s, "Other", "UTC")
        s.add(PipelineConfig(organization_id=acme, active_provider="gemini", active_model="gemini-2.5-flash",
                             fallback_provider="google-vision", daily_budget_micros=10_000,
                             monthly_budget_micros=100_000))
        s.add(ProviderConfig(organization_id=acme, provider="local"))
        s.add(ProviderConfig(organization_id=other, provider="gemini"))
        done = add_photo(s, acme, "completed", utc(10, 1, 0))
        rows = [
            # time,              provider,        status,        cost, conf, latency, wait
            (utc(11, 26, 2, 5), "gemini", "completed", 1000, 0.9, 200, 3000),  # r1
            (utc(11, 26, 2, 1), "google-vision", "failed", 0, None, 5000, 10000),  # r2
            (utc(11, 26, 2, 6), "gemini", "completed", 1000, 0.8, 100, 1000),  # r3
            (utc(11, 26, 2, 7), "gemini", "completed", 1000, 0.7, 300, 1000),  # r4
            (utc(11, 26, 2, 8), "gemini", "failed", 0, None, 1000, 1000),  # r5
            (utc(11, 26, 1, 30), "gemini", "needs_review", 2000, 0.5, 400, 20000),  # r6
            (utc(11, 26, 1, 5), "local", "completed", 0, 0.7, 50, 500),  # r7
            (utc(11, 25, 4, 30), "gemini", "completed", 5000, 0.8, 200, 60000),  # r8: 23:30 local, yesterday
            (utc(11, 25, 2, 0), "gemini", "completed", 2500, 0.6, 200, 2000),  # r9: yesterday, before 21:10
            (utc(11, 25, 2, 15), "local", "completed", 500, 0.9, 50, 2000),  # r10: yesterday, after 21:10
            (utc(10, 31, 23, 0), "gemini", "completed", 7000, 0.9, 200, 2000),  # r11: 19:00 local, October
            (utc(11, 1, 4, 30), "google-vision", "completed", 4000, 0.95, 300, 2000),  # r12: Nov 1 00:30 EDT
            (utc(11, 25, 1, 50), "google-vision", "failed", 0, None, 800, 1000),  # r13: yesterday's last hour
        ]
        for at, provider, status, cost, conf, latency, wait in rows:
            add_result(s, acme, done, at, provider, status, cost=cost, conf=conf, latency=latency, wait=wait)
        # The queue: 3 pending (one not due until 03:00), 1 processing, 4 completed, 2 in review, 1 failed.
        add_photo(s, acme, "pending", utc(11, 25, 20, 0), next_attempt=utc(11, 26, 3, 0))
        add_photo(s, acme, "pending", utc(11, 26, 0, 10))  # oldest due: 2 h old at 02:10
        add_photo(s, acme, "pending", utc(11, 26, 1, 0), next_attempt=utc(11, 26, 1, 30))
        add_photo(s, acme, "processing", utc(11, 26, 2, 0))
        for _ in range(3):
            add_photo(s, acme, "completed", utc(11, 20, 0))
        for _ in range(2):
            add_photo(s, acme, "needs_review", utc(11, 20, 0))
        add_photo(s, acme, "failed", utc(11, 20, 0))
        s.add(AiProviderHealth(organization_id=None, provider_name="google-vision", status="down",
                               response_time_ms=9000, error_rate=1.0, last_check=utc(11, 26, 2, 0)))
        s.add(AiProviderHealth(organization_id=acme, provider_name="gemini", status="healthy",
                               response_time_ms=150, error_rate=0.0, last_check=utc(11, 26, 1, 0)))

        # Other's rows land in the very same hours and windows, with figures that would show at once.
        o_photo = add_photo(s, other, "completed", utc(10, 1, 0))
        for at in (utc(11, 26, 2, 5), utc(11, 26, 1, 30), utc(11, 25, 2, 0), utc(11, 25, 12, 0)):
            add_result(s, other, o_photo, at, "gemini", "failed", cost=999_999, conf=0.1, latency=60000,
                       wait=999_999_999)
        add_photo(s, other, "pending", utc(1, 1, 0))
        s.add(AiProviderHealth(organization_id=other, provider_name="gemini", status="down",
                               last_check=utc(11, 26, 2, 9)))
    return acme, other


@pytest.fixture
def orgs(any_settings: Settings) -> tuple[int, int]:
    return seed(any_settings)


# ---------------------------------------------------------------------------------------- status cards


def test_status_cards_known_answers(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    cards = ls.status_cards(organization_id=acme, now=NOW)
    assert cards.timezone == "America/New_York"
    assert cards.day_start == utc(11, 25, 5, 0)
    # Today = [11-25 05:00, 11-26 02:10): r1..r7; processed r1 r3 r4 r6 r7. Yesterday to 21:10: r9 r13.
    processed = cards.processed_today
    assert (processed.value, processed.previous, processed.delta) == (5, 1, 4)
    # Confidence today (0.9 + 0.8 + 0.7 + 0.5 + 0.7) / 5 = 0.72; yesterday r9 alone: 0.6.
    assert cards.avg_confidence_today.value == pytest.approx(0.72)
    assert cards.avg_confidence_today.previous == pytest.approx(0.6)
    assert cards.avg_confidence_today.delta == pytest.approx(0.12)
    # Last hour [01:10, 02:10): r1..r6, failed r2 r5 -> 2/6. Same hour yesterday: r9 ok, r13 failed -> 1/2.
    assert cards.results_last_hour == 6
    assert cards.error_rate_last_hour.value == pytest.approx(1 / 3)
    assert cards.error_rate_last_hour.previous == pytest.approx(0.5)
    # Spend today 1000 * 3 + 2000; yesterday to 21:10: r9 2500 (r8 and r10 come later in the evening).
    assert cards.spend_today_micros == ls.Compared(5000, 2500)
    assert cards.spend_today_micros.delta == 2500
    # Month from Nov 1 04:00 UTC: 5000 today + r8 5000 + r9 2500 + r10 500 + r12 4000 (r11 is October).
    assert cards.spend_month_micros == 17_000
    assert (cards.daily_budget_micros, cards.monthly_budget_micros) == (10_000, 100_000)
    assert cards.daily_budget_used == pytest.approx(0.5)
    assert cards.monthly_budget_used == pytest.approx(0.17)
    assert (cards.pending, cards.processing, cards.failed, cards.needs_review) == (3, 1, 1, 2)
    assert not cards.paused and cards.pause_reason is None


def test_paused_flag_and_reason(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    with service_session() as s:
        cfg = s.get(PipelineConfig, acme)
        assert cfg is not None
        cfg.paused, cfg.pause_reason, cfg.paused_at = True, "Daily budget reached", utc(11, 26, 1, 0)
    cards = ls.status_cards(organization_id=acme, now=NOW)
    assert (cards.paused, cards.pause_reason) == (True, "Daily budget reached")
    assert cards.paused_at == utc(11, 26, 1)
    queue = ls.queue_monitor(organization_id=acme, now=NOW)
    assert queue.drain_eta is None and "paused" in queue.drain_note


# --------------------------------------------------------------------------------------- queue monitor


def test_queue_monitor_known_answers(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    q = ls.queue_monitor(organization_id=acme, now=NOW)
    assert q.counts == {"pending": 3, "processing": 1, "needs_review": 2, "failed": 1}
    assert ls.photo_status_counts(organization_id=acme) == {
        "pending": 3, "processing": 1, "completed": 4, "needs_review": 2, "failed": 1}
    # The current hour and the 23 before it: 11-25 03:00 .. 11-26 02:00 UTC; r9, r10, r13 are older.
    ny = "America/New_York"
    expected = pd.DataFrame(
        [
            (pd.Timestamp("2026-11-24 23:00", tz=ny), "gemini", 1, 0),  # r8
            (pd.Timestamp("2026-11-25 20:00", tz=ny), "gemini", 1, 0),  # r6 (needs_review is processed)
            (pd.Timestamp("2026-11-25 20:00", tz=ny), "local", 1, 0),  # r7
            (pd.Timestamp("2026-11-25 21:00", tz=ny), "gemini", 3, 1),  # r1 r3 r4 / r5
            (pd.Timestamp("2026-11-25 21:00", tz=ny), "google-vision", 0, 1),  # r2
        ],
        columns=["hour", "provider", "completed", "failed"],
    )
    got = q.throughput.copy()
    got["hour"] = got["hour"].dt.tz_convert(ny)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    # Waits of r8 r6 r7 r2 r1 r3 r4 r5: 60000 20000 500 10000 3000 1000 1000 1000 -> 96500 / 8.
    assert q.avg_wait_ms == pytest.approx(12062.5)
    assert q.wait_samples == 8
    # Buckets (<=1s, <=5s, <=15s, <=60s): 4, 1, 1, 2. Rank 0.95 * 8 = 7.6 falls in (15s, 60s] holding
    # ranks 7..8: 15000 + (7.6 - 6) / 2 * 45000 = 51000, certainly between 15 s and 60 s.
    assert q.p95_wait is not None
    assert q.p95_wait_ms == pytest.approx(51000)
    assert (q.p95_wait.low, q.p95_wait.high, q.p95_wait.max_error) == (15000, 60000, 45000)
    # Oldest due pending: created 00:10 (the 11-25 20:00 one is not due until 03:00).
    assert q.oldest_due_pending_at == utc(11, 26, 0, 10)
    assert q.oldest_due_pending_age == timedelta(hours=2)
    # 3 pending at 4 processed in the last hour (r1 r3 r4 r6) -> 0.75 h.
    assert q.processed_last_hour == 4
    assert q.drain_eta == timedelta(minutes=45)


def test_drain_estimate_without_recent_work_says_why(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    later = NOW + timedelta(hours=3)  # nothing was processed in 04:10..05:10
    q = ls.queue_monitor(organization_id=acme, now=later)
    assert q.drain_eta is None
    assert "Nothing was processed in the last hour" in q.drain_note
    assert q.oldest_due_pending_at == utc(11, 25, 20, 0)  # now due as well


# ---------------------------------------------------------------------------------------- cost monitor


def test_cost_monitor_known_answers(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    c = ls.cost_monitor(organization_id=acme, now=NOW)
    expected = pd.DataFrame(
        [("google-vision", 0, 4000), ("gemini", 5000, 12500), ("local", 0, 500)],
        columns=["provider", "today_micros", "month_micros"],
    )
    pd.testing.assert_frame_equal(c.by_provider, expected, check_dtype=False)
    assert (c.today_micros, c.month_micros) == (5000, 17000)
    # 24 d 22 h 10 min since Nov 1 04:00 UTC; November is 30 d 1 h long (DST ended on the 1st).
    assert c.elapsed_days == pytest.approx(24 + 22 / 24 + 10 / 1440)
    assert c.month_days == pytest.approx(30 + 1 / 24)
    # 17000 / 24.9236 = 682.08 -> 682 a day; 17000 + 682 * 5.11806 = 20490.5 -> 20491.
    assert c.daily_average_micros == 682
    assert c.projected_month_micros == 20491
    budgets = c.budgets.set_index("period")
    assert budgets.loc["today", "spent_micros"] == 5000 and budgets.loc["today", "budget_micros"] == 10_000
    assert budgets.loc["month", "projected_micros"] == 20491


def test_projection_on_the_first_hours_of_a_month(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    with service_session() as s:
        photo = s.execute(select(Photo.id).where(Photo.organization_id == acme).limit(1)).scalar_one()
        add_result(s, acme, photo, utc(12, 1, 5, 30), "gemini", "completed", cost=300, conf=0.9)
    # Dec 1 00:40 EST: 40 minutes into December. The spend so far stands for one day, not 36 days' worth.
    c = ls.cost_monitor(organization_id=acme, now=utc(12, 1, 5, 40))
    assert c.month_micros == 300 and c.today_micros == 300
    assert c.daily_average_micros == 300
    assert c.projected_month_micros == 300 * 31


# ------------------------------------------------------------------------------------- provider health


def test_provider_health_known_answers(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    report = health_report.provider_health(organization_id=acme, now=NOW)
    by = {p.provider: p for p in report.providers}
    assert list(by) == ["google-vision", "gemini", "local"]
    # google-vision: the platform-wide check at 02:00 is fresh and says down.
    gv = by["google-vision"]
    assert (gv.status, gv.status_source, gv.last_check) == ("down", "check", utc(11, 26, 2, 0))
    assert (gv.results, gv.failed, gv.error_rate) == (1, 1, 1.0)
    assert (gv.p50_latency_ms, gv.p95_latency_ms) == (5000, 5000)
    # gemini: Acme's own check (01:00) is stale; in [01:55, 02:10) r1 r3 r4 r5 -> 1 of 4 failed: degraded.
    # Other's fresh "down" row for gemini must not count. Latencies 100 200 300 1000: p50 = 250,
    # p95 at position 2.85 = 300 + 0.85 * 700 = 895.
    gm = by["gemini"]
    assert (gm.status, gm.status_source) == ("degraded", "traffic")
    assert gm.last_check == utc(11, 26, 1, 0) and gm.last_check_status == "healthy"
    assert (gm.results, gm.failed) == (4, 1) and gm.error_rate == pytest.approx(0.25)
    assert gm.p50_latency_ms == pytest.approx(250)
    assert gm.p95_latency_ms == pytest.approx(895)
    # local: configured, no traffic, no check.
    lo = by["local"]
    assert (lo.status, lo.status_source, lo.results, lo.error_rate, lo.p50_latency_ms) == (
        "unknown", "none", 0, None, None)


# ------------------------------------------------------------------------- time zones, isolation, misc


def test_half_hour_time_zone_day_boundary_is_exact(any_settings: Settings) -> None:
    # Asia/Kolkata is UTC+05:30: the local day starts at 18:30 UTC, in the middle of a rollup hour.
    with service_session() as s:
        org = add_org(s, "Mumbai", "Asia/Kolkata")
        photo = add_photo(s, org, "completed", utc(11, 1, 0))
        add_result(s, org, photo, utc(11, 25, 18, 20), "gemini", "completed", cost=100, conf=0.5)  # yesterday
        add_result(s, org, photo, utc(11, 25, 18, 40), "gemini", "completed", cost=200, conf=0.7)  # today
        add_result(s, org, photo, utc(11, 26, 9, 0), "local", "completed", cost=0, conf=0.9)  # today
    now = utc(11, 26, 10, 0)  # 15:30 IST; same time yesterday = 11-25 10:00 UTC
    cards = ls.status_cards(organization_id=org, now=now)
    assert cards.day_start == utc(11, 25, 18, 30)
    assert cards.processed_today == ls.Compared(2, 0)
    assert cards.spend_today_micros.value == 200
    assert cards.avg_confidence_today.value == pytest.approx(0.8)
    # At 23:59 IST yesterday (18:29 UTC) only the 18:20 result was "today".
    cards = ls.status_cards(organization_id=org, now=utc(11, 25, 18, 29))
    assert cards.processed_today.value == 1 and cards.spend_today_micros.value == 100


def test_other_orgs_rows_never_count(orgs: tuple[int, int]) -> None:
    _, other = orgs
    cards = ls.status_cards(organization_id=other, now=NOW)
    # Other (UTC) today = 11-26 00:00..02:10: its results at 02:05 and 01:30, both failed.
    assert cards.processed_today.value == 0
    assert cards.spend_today_micros.value == 2 * 999_999
    assert cards.pending == 1 and cards.needs_review == 0
    health = {p.provider: p for p in health_report.provider_health(organization_id=other, now=NOW).providers}
    assert list(health) == ["gemini"]
    assert health["gemini"].status == "down" and health["gemini"].status_source == "check"


def test_empty_organization(any_settings: Settings) -> None:
    with service_session() as s:
        org = add_org(s, "Empty", "Europe/Berlin")
    snap = ls.live_snapshot(organization_id=org, now=NOW)
    assert snap.status.processed_today == ls.Compared(0, 0)
    assert snap.status.avg_confidence_today == ls.Compared(None, None)
    assert snap.status.error_rate_last_hour.delta is None
    assert snap.status.daily_budget_used is None
    assert snap.queue.throughput.empty and list(snap.queue.throughput.columns) == [
        "hour", "provider", "completed", "failed"]
    assert snap.queue.avg_wait_ms is None and snap.queue.p95_wait is None
    assert snap.queue.drain_eta == timedelta(0) and snap.queue.drain_note == "The queue is empty."
    assert snap.queue.oldest_due_pending_age is None
    assert snap.cost.by_provider.empty and snap.cost.projected_month_micros == 0
    assert [(p.provider, p.status) for p in snap.providers.providers] == [("local", "unknown")]


def test_unknown_organization_is_a_clear_error(any_settings: Settings) -> None:
    with pytest.raises(NotFound, match="Organization 424242 does not exist"):
        ls.status_cards(organization_id=424242, now=NOW)


def test_naive_now_is_refused(orgs: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ls.status_cards(organization_id=orgs[0], now=datetime(2026, 11, 26, 2, 10))


def test_snapshot_equals_the_parts(orgs: tuple[int, int]) -> None:
    acme, _ = orgs
    snap = ls.live_snapshot(organization_id=acme, now=NOW)
    assert snap.status == ls.status_cards(organization_id=acme, now=NOW)
    assert snap.providers == health_report.provider_health(organization_id=acme, now=NOW)
    queue = ls.queue_monitor(organization_id=acme, now=NOW)
    pd.testing.assert_frame_equal(snap.queue.throughput, queue.throughput)
    assert (snap.queue.counts, snap.queue.drain_eta, snap.queue.p95_wait) == (
        queue.counts, queue.drain_eta, queue.p95_wait)
    cost = ls.cost_monitor(organization_id=acme, now=NOW)
    pd.testing.assert_frame_equal(snap.cost.by_provider, cost.by_provider)
    pd.testing.assert_frame_equal(snap.cost.budgets, cost.budgets)


def test_snapshot_is_cached_until_invalidated(any_settings: Settings) -> None:
    with service_session() as s:
        org = add_org(s, "Cached", "UTC")
        add_photo(s, org, "pending", utc(11, 1, 0))
    assert ls.live_snapshot(organization_id=org).status.pending == 1
    with service_session() as s:
        add_photo(s, org, "pending", utc(11, 1, 0))
    assert ls.live_snapshot(organization_id=org).status.pending == 1  # within the TTL
    assert ls.live_snapshot(organization_id=org, use_cache=False).status.pending == 2
    cache.invalidate_live(org)
    assert ls.live_snapshot(organization_id=org).status.pending == 2


# ------------------------------------------------------------------------------------ db.sql helpers


def test_percentile_from_histogram_known_answers() -> None:
    bounds = (10, 20, 40)
    # 10 values: 2 in (0,10], 3 in (10,20], 5 in (20,40]. Median rank 5 -> end of the 2nd bucket = 20.
    assert percentile_from_histogram([2, 3, 5, 0], bounds, 0.5).value == pytest.approx(20)  # type: ignore[union-attr]
    # p90: rank 9 -> 4 of 5 into (20, 40] -> 36, within 20 of the truth.
    p90 = percentile_from_histogram([2, 3, 5, 0], bounds, 0.9)
    assert p90 is not None and (p90.value, p90.low, p90.high, p90.max_error) == (36, 20, 40, 20)
    # Ranks in the open top bucket: the answer is its lower bound, flagged open-ended.
    top = percentile_from_histogram([1, 0, 0, 9], bounds, 0.95)
    assert top is not None and (top.value, top.high, top.max_error) == (40, None, None)
    assert percentile_from_histogram([0, 0, 0, 0], bounds, 0.5) is None
    with pytest.raises(ValueError, match="expected bounds"):
        percentile_from_histogram([1, 2], bounds, 0.5)


def test_hour_floor_matches_stored_hours(any_settings: Settings) -> None:
    with service_session() as s:
        org = add_org(s, "Hours", "UTC")
        photo = add_photo(s, org, "completed", utc(11, 1, 0))
        for minute in (0, 29, 59):
            add_result(s, org, photo, utc(11, 26, 13, minute), "local", "completed")
    with org_session(org) as s:
        rows = s.execute(
            select(hour_floor(AiProcessingResult.created_at), func.count())
            .where(AiProcessingResult.organization_id == org)
            .group_by(hour_floor(AiProcessingResult.created_at))
        ).all()
        assert rows == [(utc(11, 26, 13), 3)]
        # The truncated hour compares equal to the rollup table's stored hour on both dialects.
        joined = s.execute(
            select(func.count()).select_from(AiProcessingResult).join(
                ProcessingRollupHourly,
                (ProcessingRollupHourly.organization_id == AiProcessingResult.organization_id)
                & (ProcessingRollupHourly.hour == hour_floor(AiProcessingResult.created_at)),
            )
        ).scalar_one()
        assert joined == 3
    assert get_engine().dialect.name in ("sqlite", "postgresql")


def test_hour_helpers() -> None:
    assert floor_hour(utc(11, 26, 2, 10)) == utc(11, 26, 2)
    assert ceil_hour(utc(11, 26, 2, 10)) == utc(11, 26, 3)
    assert ceil_hour(utc(11, 26, 2)) == utc(11, 26, 2)


def test_known_answers_hold_with_rollups_rebuilt_by_rollups_module(orgs: tuple[int, int]) -> None:
    # The worker-style rollups written above and rollups.rebuild_rollups must mean the same thing.
    from aiconsole.pipeline import rollups

    acme, _ = orgs
    before = ls.live_snapshot(organization_id=acme, now=NOW)
    with service_session() as s:
        s.execute(ProcessingRollupHourly.__table__.delete())
        rollups.rebuild_rollups(s, organization_id=acme)
    after = ls.live_snapshot(organization_id=acme, now=NOW)
    conf_before, conf_after = before.status.avg_confidence_today, after.status.avg_confidence_today
    assert (conf_after.value, conf_after.previous) == pytest.approx((conf_before.value, conf_before.previous))
    assert replace(after.status, avg_confidence_today=conf_before) == before.status
    pd.testing.assert_frame_equal(after.queue.throughput, before.queue.throughput)
    assert (after.queue.avg_wait_ms, after.queue.p95_wait) == (before.queue.avg_wait_ms, before.queue.p95_wait)
    pd.testing.assert_frame_equal(after.cost.by_provider, before.cost.by_provider)
