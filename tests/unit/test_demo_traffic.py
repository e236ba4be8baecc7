"""Demo traffic (issue 10 item 6): a diurnal stream of sample photos into demo organizations only, through
intake, deterministic on an injected clock, and outliving a database that cannot be opened.

The rate's known answers: over a whole week the stream's expected count is BASE_PER_MINUTE x 60 x the sum
of the 168 hourly weights (the curve joins hour midpoints with straight lines, so each hour's weight is its
own area); over a Monday in New York it is ~1,972 (numerically integrated); hourly counts follow the
history's HOUR_OF_DAY in the organization's zone, not the server's.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from aiconsole.admin import users
from aiconsole.demo.history import RESULTS_PER_DAY
from aiconsole.demo.seed import MAX_DAYS
from aiconsole.demo.timeline import DAY_OF_WEEK, HOUR_OF_DAY, PENDING_PHOTOS
from aiconsole.demo.traffic import (
    BASE_PER_MINUTE,
    FIRST_VARIANT,
    WEEK,
    Arrival,
    ArrivalStream,
    DemoTraffic,
    enqueue_arrivals,
    per_minute_at,
    traffic_actor,
    weight_at,
)
from aiconsole.pipeline import intake
from aiconsole.platform.db import dispose_engines, service_session
from aiconsole.platform.db.models import AuditLog, Organization, Photo
from aiconsole.platform.errors import PermissionDenied
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers import samples

NY = ZoneInfo("America/New_York")
MONDAY = datetime(2026, 3, 2, tzinfo=NY)  # 00:00 local, no DST change that day


def _day(stream: ArrivalStream, start: datetime) -> list[Arrival]:
    return stream.until(start + timedelta(days=1))


def test_the_curve_joins_the_hourly_weights_without_steps() -> None:
    assert weight_at(MONDAY.replace(hour=11, minute=30), NY) == pytest.approx(HOUR_OF_DAY[11])
    assert weight_at(MONDAY.replace(hour=12), NY) == pytest.approx((HOUR_OF_DAY[11] + HOUR_OF_DAY[12]) / 2)
    # Sunday 23:30 -> Monday 00:30 is one straight line, across midnight and the weekday change.
    sunday_late = (MONDAY - timedelta(minutes=30)).astimezone(UTC)
    assert weight_at(sunday_late, NY) == pytest.approx(HOUR_OF_DAY[23] * DAY_OF_WEEK[6])
    assert weight_at(MONDAY, NY) == pytest.approx((HOUR_OF_DAY[23] * DAY_OF_WEEK[6] + HOUR_OF_DAY[0]) / 2)
    minutes = [weight_at(MONDAY + timedelta(minutes=m), NY) for m in range(7 * 24 * 60)]
    assert max(abs(b - a) for a, b in pairwise(minutes)) < 0.01  # no jumps
    # The organization's zone decides: 11:30 in New York is the small hours in Tokyo.
    moment = MONDAY.replace(hour=11, minute=30)
    assert per_minute_at(moment, NY) == pytest.approx(BASE_PER_MINUTE * HOUR_OF_DAY[11])
    assert per_minute_at(moment, ZoneInfo("Asia/Tokyo")) < per_minute_at(moment, NY) / 5
    assert per_minute_at(moment, NY, rate=10) == pytest.approx(10 * per_minute_at(moment, NY))


def test_a_simulated_week_has_the_known_count_and_shape() -> None:
    start = MONDAY
    stream = ArrivalStream(start=start.astimezone(UTC), tz=NY, seed=7, organization_id=1)
    days = [_day(stream, start + timedelta(days=d)) for d in range(7)]
    week_expected = BASE_PER_MINUTE * 60 * sum(WEEK)
    assert week_expected == pytest.approx(11_370, abs=1)
    assert sum(len(d) for d in days) == pytest.approx(week_expected, rel=0.03)
    monday = days[0]
    assert len(monday) == pytest.approx(1_972, rel=0.06)  # sd of a Poisson count of 1,972: 44
    by_hour = Counter(a.at.astimezone(NY).hour for a in monday)
    expected_11h = BASE_PER_MINUTE * 60 * HOUR_OF_DAY[11]  # 165 at Monday 11:00-12:00
    assert by_hour[11] == pytest.approx(expected_11h, rel=0.25)
    assert sum(by_hour[h] for h in range(9, 17)) > 12 * sum(by_hour[h] for h in range(1, 5))
    assert max(by_hour, key=lambda h: by_hour[h]) in range(9, 17)  # busiest in working hours, local time
    sunday = days[6]
    assert len(sunday) == pytest.approx(len(monday) * DAY_OF_WEEK[6], rel=0.15)
    # A few photos a minute at the peak, not hundreds.
    peak = max(per_minute_at(start + timedelta(minutes=m), NY) for m in range(0, 7 * 24 * 60, 5))
    assert 2 <= peak <= 4


def test_the_same_seed_and_clock_give_the_same_photos_and_variants_are_fresh() -> None:
    start = MONDAY.replace(hour=9).astimezone(UTC)

    def hour(seed: int, at: datetime = start, org: int = 1) -> list[Arrival]:
        return ArrivalStream(start=at, tz=NY, seed=seed, organization_id=org).until(at + timedelta(hours=1))

    first = hour(1)
    assert first == hour(1) and len(first) > 50
    assert first != hour(2) and first != hour(1, org=2)
    assert first != hour(1, at=start + timedelta(seconds=1))  # a restart is a new stream, not a replay
    # Read in slices or at once: the same arrivals.
    stream = ArrivalStream(start=start, tz=NY, seed=1, organization_id=1)
    sliced = [a for m in range(1, 61) for a in stream.until(start + timedelta(minutes=m))]
    assert sliced == first
    assert all(start < a.at < start + timedelta(hours=1) for a in first)
    assert [a.at for a in first] == sorted(a.at for a in first)
    # Every arrival is a distinct photo above the seed's variant numbers, so dedup keeps them all.
    week = ArrivalStream(start=start, tz=NY, seed=3, organization_id=1).until(start + timedelta(days=7))
    assert len({(a.sample, a.variant) for a in week}) == len(week)
    assert min(a.variant for a in week) >= FIRST_VARIANT > 2 * (RESULTS_PER_DAY * MAX_DAYS + PENDING_PHOTOS)
    names = Counter(a.sample for a in week)
    assert set(names) == set(samples.SAMPLES) and names["chelsea"] > 2 * names["moon"]  # the history's weights


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _photos(org: int) -> list[Photo]:
    with service_session() as s:
        return list(s.scalars(select(Photo).where(Photo.organization_id == org).order_by(Photo.id)))


def test_ticks_queue_what_arrived_through_intake_in_demo_organizations_only(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    demo = users.create_organization(name="Demo Photos Inc.", timezone="America/New_York", is_demo=True).id
    real = users.create_organization(name="Real Photos", timezone="America/New_York").id
    clock = FakeClock(MONDAY.replace(hour=10).astimezone(UTC))
    run = DemoTraffic(settings=settings, seed=5, rate=4.0, clock=clock)
    caplog.set_level(logging.INFO, logger="aiconsole.demo.traffic")
    assert run.tick() == 0  # the stream starts at the first tick: nothing is made up for
    start = clock.now
    stream = ArrivalStream(start=clock.now, tz=NY, seed=5, organization_id=demo, rate=4.0)
    minutes = 10
    for _ in range(minutes):
        clock.now += timedelta(minutes=1)
        run.tick()
    expected = stream.until(clock.now)
    photos = _photos(demo)
    assert [p.filename for p in photos] == [a.filename for a in expected] and run.queued == len(expected)
    assert len(expected) == pytest.approx(minutes * 4.0 * per_minute_at(clock.now, NY), rel=0.35)
    assert _photos(real) == []
    assert {(p.status, p.source) for p in photos} == {("pending", "api")}
    for p in photos:  # the bytes of the sample variant its name says
        name, variant = p.filename.removesuffix(".jpg").rsplit("_", 1)
        assert p.sha256 == samples.demo_photo(name, int(variant)).sha256
    with service_session() as s:  # intake wrote them: one audit row per photo, by the traffic's system actor
        audited = Counter(s.execute(select(AuditLog.organization_id, AuditLog.actor)
                                    .where(AuditLog.action == "photo.enqueue")).all())
    assert audited == {(demo, "system:demo-traffic"): len(photos)}
    batches = {(a.at - start) // timedelta(minutes=1) for a in expected}  # the ticks that had photos to send
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len(batches) < len(photos)  # one line per batch, not per photo
    assert all(line.startswith("demo traffic: Demo Photos Inc.: ") for line in lines)
    # Dedup applies: the same photos again are "already known", not queued twice.
    again = enqueue_arrivals(demo, expected[:3], settings=settings)
    assert (again.count("queued"), again.count("duplicate")) == (0, 3)
    # An organization that stops being a demo gets nothing more.
    with service_session() as s:
        s.execute(update(Organization).where(Organization.id == demo).values(is_demo=False))
    before = len(photos)
    clock.now += timedelta(minutes=30)
    assert run.tick() == 0 and len(_photos(demo)) == before


def test_a_non_demo_organization_is_refused_at_every_level(settings: Settings) -> None:
    demo = users.create_organization(name="Demo Photos Inc.", is_demo=True).id
    real = users.create_organization(name="Real Photos").id
    arrivals = [Arrival(datetime.now(UTC), "coffee", FIRST_VARIANT + 1)]
    with pytest.raises(PermissionDenied, match="demo traffic goes to demo organizations only"):
        enqueue_arrivals(real, arrivals, settings=settings)
    # Past that check, intake itself refuses the traffic's actor outside the demo organizations.
    with pytest.raises(PermissionDenied, match="acts on demo organizations only"):
        intake.enqueue_files(traffic_actor(real, frozenset({demo})), [("x.jpg", samples.sample_photo("coffee", 1))],
                             settings=settings)
    assert _photos(real) == []
    assert enqueue_arrivals(demo, arrivals, settings=settings).count("queued") == 1
    # With no demo organization at all, a whole day of ticks queues nothing anywhere.
    with service_session() as s:
        s.execute(update(Organization).values(is_demo=False))
    clock = FakeClock(MONDAY.replace(hour=10).astimezone(UTC))
    run = DemoTraffic(settings=settings, rate=50.0, clock=clock)
    for _ in range(24):
        run.tick()
        clock.now += timedelta(hours=1)
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == 1


def test_a_database_that_cannot_be_opened_is_logged_once_backed_off_and_resumed(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite cannot open the database (a folder stands where its file goes): the stream backs off (1, 2, 4 s
    ...), saying so once per retry without a traceback, then resumes by itself when the file is there."""
    path = tmp_path / "aiconsole.db"
    path.mkdir()
    monkeypatch.setenv("AICONSOLE_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    dispose_engines()
    settings = get_settings()
    clock = FakeClock(MONDAY.replace(hour=11).astimezone(UTC))
    run = DemoTraffic(settings=settings, rate=20.0, clock=clock, retry_s=1.0, max_retry_s=4.0)
    caplog.set_level(logging.INFO, logger="aiconsole.demo.traffic")
    waits = [run.step() for _ in range(4)]
    assert waits == [1.0, 2.0, 4.0, 4.0]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and "database unavailable" in lines[0] and "Retry in 1 s" in lines[0]
    assert all("still failing, database unavailable" in line for line in lines[1:]) and "Retry 4 in 4 s" in lines[3]
    assert not any(r.exc_info for r in caplog.records)  # an outage is expected: no traceback
    path.rmdir()
    upgrade(settings.resolved_database_url)
    org = users.create_organization(name="Demo Photos Inc.", timezone="America/New_York", is_demo=True).id
    caplog.clear()
    assert run.step() == run.interval_s
    assert "database working again" in caplog.records[-1].getMessage()
    clock.now += timedelta(minutes=2)
    run.step()
    assert len(_photos(org)) > 0
