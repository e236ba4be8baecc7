"""Demo traffic: a gentle stream of sample photos into the demo organizations, at a realistic diurnal rate.

`aiconsole up` runs it beside the console and its workers (`--no-demo-traffic` turns it off), so Live Status
keeps moving once the seeded queue has drained. Only demo organizations get photos, checked three times:
the targets are read as `is_demo` organizations, each batch checks its organization again, and the photos
are enqueued by `system:demo-traffic`, an actor whose reach is the demo organizations (so intake's own
permission check refuses any other).

The rate follows the seeded history's calendar (timeline.HOUR_OF_DAY x DAY_OF_WEEK) in each organization's
time zone, interpolated linearly between hour midpoints so it has no steps: BASE_PER_MINUTE photos a minute
at weight 1, about 2.9 at a weekday's peak, 0.05 on a Sunday night, some 1,600 a day over a week.
`rate` multiplies it (tests, or a busier demo). Arrivals are a Poisson process, thinned from the week's
peak rate; every draw (times, samples, variants) comes from a generator seeded by (seed, organization,
start), so the same seed and clock give the same photos, and a restart a different stream.

Photos go through `pipeline.intake` like any upload: validation, size limits, sha256 dedup, the audit row.
A variant number renders distinct bytes (samples writes it into a JPEG comment); traffic draws them from
FIRST_VARIANT up, above any variant the seed uses, so dedup does not swallow them.

The database or Redis failing logs one line, then one per retry (1 s doubling to 30 s) and one when it
answers again, without a traceback; photos that arrived meanwhile are sent then, those older than
MAX_BACKLOG_S dropped. One log line per batch, never per photo.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from aiconsole.demo.history import SAMPLE_WEIGHTS
from aiconsole.demo.timeline import DAY_OF_WEEK, HOUR_OF_DAY
from aiconsole.pipeline.intake import MAX_FILES_PER_BATCH, EnqueueReport, enqueue_files
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import Organization
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import PermissionDenied, ValidationFailed, infrastructure_fault
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers import samples

log = logging.getLogger(__name__)

ACTOR = "demo-traffic"
BASE_PER_MINUTE = 2.5  # photos a minute at calendar weight 1 (the seeded history's level)
# The week as 168 hourly weights, Monday 00:00-01:00 first; each applies at its hour's midpoint.
WEEK = tuple(day * hour for day in DAY_OF_WEEK for hour in HOUR_OF_DAY)
PEAK_WEIGHT = max(WEEK)
FIRST_VARIANT = 10_000_000  # the seed numbers its photos' variants from 1 (90 days: ~160,000)
LAST_VARIANT = 999_999_999  # samples' largest variant number
INTERVAL_S = 30.0
MAX_BACKLOG_S = 600.0
RETRY_S, MAX_RETRY_S = 1.0, 30.0


def interval_for(rate: float) -> float:
    """Seconds between batches at `rate`: INTERVAL_S at the realistic rate, shorter (down to 1 s) when faster."""
    return min(INTERVAL_S, max(1.0, INTERVAL_S / rate))


def weight_at(moment: datetime, tz: ZoneInfo) -> float:
    """The calendar weight at `moment` in zone `tz`: hourly weights joined by straight lines at mid-hour."""
    local = moment.astimezone(tz)
    hours = local.weekday() * 24 + local.hour + (local.minute * 60 + local.second + local.microsecond / 1e6) / 3600
    x = hours - 0.5
    i = math.floor(x)
    frac = x - i
    return WEEK[i % len(WEEK)] * (1 - frac) + WEEK[(i + 1) % len(WEEK)] * frac


def per_minute_at(moment: datetime, tz: ZoneInfo, *, rate: float = 1.0) -> float:
    """Expected photos a minute at `moment` (in zone `tz`), `rate` times the realistic level."""
    return BASE_PER_MINUTE * rate * weight_at(moment, tz)


@dataclass(frozen=True)
class Arrival:
    """One photo of the stream: when it arrives, and which sample variant it is."""

    at: datetime
    sample: str
    variant: int

    @property
    def filename(self) -> str:
        """The name it is uploaded under."""
        return f"{self.sample}_{self.variant}.jpg"


class ArrivalStream:
    """One organization's arrivals from `start` on, drawn lazily; the same seed and start, the same photos."""

    def __init__(self, *, start: datetime, tz: ZoneInfo, seed: int, organization_id: int, rate: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("`start` must be timezone-aware")
        if not rate > 0:
            raise ValueError("`rate` must be positive")
        self.tz = tz  # the organization may change its zone; the next draws use the new one
        self.rate = rate
        self._rng = random.Random(f"aiconsole-demo-traffic:{seed}:{organization_id}:{start.astimezone(UTC)}")
        self._names = [s.name for s in samples.list_samples()]
        self._weights = [SAMPLE_WEIGHTS.get(name, 1.0) for name in self._names]
        self._peak_per_s = BASE_PER_MINUTE * rate * PEAK_WEIGHT / 60.0
        self._candidate = start + self._gap()

    def _gap(self) -> timedelta:
        return timedelta(seconds=self._rng.expovariate(self._peak_per_s))

    def until(self, end: datetime) -> list[Arrival]:
        """The arrivals before `end` not returned yet, oldest first."""
        out: list[Arrival] = []
        while self._candidate < end:
            at = self._candidate
            self._candidate = at + self._gap()
            # Thinning: a candidate of the peak-rate process is kept with probability weight / peak.
            if self._rng.random() * PEAK_WEIGHT < weight_at(at, self.tz):
                sample = self._rng.choices(self._names, weights=self._weights)[0]
                out.append(Arrival(at, sample, self._rng.randint(FIRST_VARIANT, LAST_VARIANT)))
        return out


@dataclass(frozen=True)
class DemoOrg:
    """A demo organization traffic goes to."""

    id: int
    name: str
    tz: ZoneInfo


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # an unknown zone still gets traffic, on UTC's day


def demo_organizations(*, settings: Settings | None = None) -> list[DemoOrg]:
    """Every demo organization, by id."""
    with service_session(settings=settings) as s:
        rows = s.execute(select(Organization.id, Organization.name, Organization.timezone)
                         .where(Organization.is_demo.is_(True)).order_by(Organization.id)).all()
    return [DemoOrg(int(r.id), r.name, _zone(r.timezone)) for r in rows]


def traffic_actor(organization_id: int, demo_ids: frozenset[int]) -> Actor:
    """system:demo-traffic in `organization_id`, bounded to the demo organizations `demo_ids`."""
    return replace(Actor.system(ACTOR, organization_id), demo_organizations=demo_ids)


def enqueue_arrivals(organization_id: int, arrivals: list[Arrival], *,
                     settings: Settings | None = None) -> EnqueueReport:
    """Queue `arrivals` in a demo organization through intake; PermissionDenied for any other organization."""
    if not arrivals:
        raise ValidationFailed("No demo photos to queue.")
    demo = frozenset(o.id for o in demo_organizations(settings=settings))
    if organization_id not in demo:
        raise PermissionDenied(f"Organization {organization_id} is not a demo organization; demo traffic goes to "
                               "demo organizations only.", hint="Seed the demo with `aiconsole demo`.")
    files = [(a.filename, samples.sample_photo(a.sample, a.variant)) for a in arrivals[-MAX_FILES_PER_BATCH:]]
    return enqueue_files(traffic_actor(organization_id, demo), files, source="api", settings=settings)


@dataclass
class _Outage:
    what: str  # the component down ("database", "Redis"), or "demo traffic" for any other failure
    reason: str
    since: float
    delay_s: float
    retries: int = 0


@dataclass
class DemoTraffic:
    """The stream into every demo organization: `tick` sends what is due, `run` ticks until stopped."""

    settings: Settings = field(default_factory=get_settings)
    seed: int = 0
    rate: float = 1.0
    interval_s: float = INTERVAL_S
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    retry_s: float = RETRY_S
    max_retry_s: float = MAX_RETRY_S
    queued: int = field(default=0, init=False)  # photos queued since the start
    _streams: dict[int, ArrivalStream] = field(default_factory=dict, init=False)
    _held: dict[int, list[Arrival]] = field(default_factory=dict, init=False)
    _outage: _Outage | None = field(default=None, init=False)

    def tick(self) -> int:
        """Queue what arrived since the last tick in each demo organization; the photos queued."""
        now = self.clock()
        orgs = demo_organizations(settings=self.settings)
        for gone in set(self._streams) - {o.id for o in orgs}:  # reseeded (a new id) or no longer a demo
            self._streams.pop(gone)
            self._held.pop(gone, None)
        queued = 0
        for org in orgs:
            stream = self._streams.get(org.id)
            if stream is None:  # a new demo organization: its stream starts now, nothing is made up for
                stream = self._streams[org.id] = ArrivalStream(start=now, tz=org.tz, seed=self.seed,
                                                               organization_id=org.id, rate=self.rate)
            stream.tz = org.tz
            oldest = now - timedelta(seconds=MAX_BACKLOG_S)
            due = [a for a in self._held.pop(org.id, []) if a.at >= oldest] + stream.until(now)
            if not due:
                continue
            self._held[org.id] = due  # until intake has them: a fault below keeps them for the next tick
            report = enqueue_arrivals(org.id, due, settings=self.settings)
            self._held.pop(org.id)
            queued += report.count("queued")
            log.info("demo traffic: %s: %s (%.1f photos a minute at %s local).", org.name, report.summary,
                     per_minute_at(now, org.tz, rate=self.rate), now.astimezone(org.tz).strftime("%a %H:%M"))
        self.queued += queued
        return queued

    def step(self) -> float:
        """One tick, with the fault handling; the seconds to wait before the next."""
        try:
            self.tick()
        except Exception as exc:  # every failure is logged and retried: the stream must outlive its hiccups
            return self._failed(exc)
        if self._outage is not None:
            log.info("demo traffic: %s working again after %.1f s; resuming.", self._outage.what,
                     self.monotonic() - self._outage.since)
            self._outage = None
        return self.interval_s

    def _failed(self, exc: Exception) -> float:
        fault = infrastructure_fault(exc)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        what, reason = ((fault.component, f"{fault.component} unavailable: {fault.message}") if fault is not None
                        else ("demo traffic", f"a batch failed ({type(exc).__name__}: {first})."))
        if self._outage is None:
            self._outage = _Outage(what, reason, self.monotonic(), self.retry_s)
            # A bug gets its traceback once; an outage is expected and its first line says all there is.
            log.warning("demo traffic: %s Retry in %.3g s.", reason, self.retry_s, exc_info=fault is None)
            return self.retry_s
        outage = self._outage
        outage.retries += 1
        outage.delay_s = min(self.max_retry_s, outage.delay_s * 2)
        log.warning("demo traffic: still failing, %s Retry %d in %.3g s.", reason, outage.retries + 1, outage.delay_s)
        return outage.delay_s

    def run(self, stop: threading.Event) -> int:
        """Tick until `stop` is set; the photos queued."""
        log.info("demo traffic: on, %.3g x the demo's rate (%.1f photos a minute at a weekday's peak); "
                 "one line per batch.", self.rate, BASE_PER_MINUTE * self.rate * PEAK_WEIGHT)
        while not stop.is_set():
            if stop.wait(self.step()):
                break
        return self.queued
