"""The shared circuit rows (pipeline/circuits), how Live Status reads them (health_report, live/status) and the
time format people see, on SQLite and PostgreSQL (issue 9 item 4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from aiconsole.live import status as live_status
from aiconsole.pipeline import circuits, config_row
from aiconsole.pipeline.health_report import circuit_view, provider_health
from aiconsole.platform import formatting as fmt
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProviderHealth, Organization, PipelineConfig
from aiconsole.platform.settings import Settings

NOW = datetime(2026, 3, 2, 14, 0, 0, 250_000, tzinfo=UTC)


def _org(tz: str = "UTC", *, provider: str = "gemini") -> int:
    with service_session() as s:
        org = Organization(name=f"Circuits {uuid.uuid4().hex[:6]}", slug=uuid.uuid4().hex[:12], timezone=tz)
        s.add(org)
        s.flush()
        s.add(PipelineConfig(organization_id=org.id, active_provider=provider, active_model="gemini-2.5-flash"))
        return int(org.id)


def _write(org: int, provider: str = "gemini", *, at: datetime = NOW, **fields: object) -> None:
    with service_session() as s:
        circuits.write(s, org, provider, worker="w1", now=at, **{"state": "open", "level": 0, **fields})  # type: ignore[arg-type]


def _latest(org: int, now: datetime = NOW) -> dict[str, circuits.Circuit]:
    with service_session() as s:
        return circuits.latest(s, org, now=now)


def test_the_newest_breaker_row_of_each_provider_is_its_circuit(any_settings: Settings) -> None:
    org, other = _org(), _org()
    _write(org, at=NOW - timedelta(minutes=3), state="open", level=0, failure_rate=0.6,
           next_probe_at=NOW - timedelta(minutes=2))
    _write(org, at=NOW - timedelta(minutes=1), state="open", level=1, failure_rate=0.6,
           next_probe_at=NOW + timedelta(seconds=30))
    _write(org, "google-vision", at=NOW - timedelta(hours=2), state="open", level=4)  # beyond LOOKBACK
    _write(org, "local", at=NOW + timedelta(minutes=1), state="open")  # after `now`
    _write(other, at=NOW, state="closed", level=3)
    with service_session() as s:  # a worker's ordinary health row is not a circuit
        s.add(AiProviderHealth(organization_id=org, provider_name="gemini", status="healthy", error_rate=0.1,
                               last_check=NOW, error_details={"source": "worker", "calls": 10, "failures": 1}))
    found = _latest(org)
    assert set(found) == {"gemini"}
    c = found["gemini"]
    assert (c.state, c.level, c.failure_rate, c.worker) == ("open", 1, 0.6, "w1")
    assert c.next_probe_at == NOW + timedelta(seconds=30) and c.at == NOW - timedelta(minutes=1)
    assert _latest(other)["gemini"].state == "closed"


def test_states_probe_turns_and_back_off_levels() -> None:
    opened = circuits.Circuit("gemini", "open", NOW, 2, 0.6, NOW + timedelta(seconds=60), None, "w1")
    assert opened.state_at(NOW) == "open" and not opened.probe_due(NOW)
    later = NOW + timedelta(seconds=60)
    assert opened.state_at(later) == "half_open" and opened.probe_due(later)
    claimed = circuits.Circuit("gemini", "half_open", NOW, 2, 0.6, None, NOW + timedelta(seconds=45), "w2")
    assert not claimed.probe_due(NOW + timedelta(seconds=44)) and claimed.probe_due(NOW + timedelta(seconds=45))
    closed = circuits.Circuit("gemini", "closed", NOW, 2, None, None, None, "w2")
    assert circuits.next_level(closed, NOW + timedelta(seconds=10), recovery_s=30) == 3  # on probation
    assert circuits.next_level(closed, NOW + timedelta(seconds=30), recovery_s=30) == 0  # recovered for real
    assert circuits.next_level(opened, NOW, recovery_s=30) == 3
    assert circuits.next_level(None, NOW, recovery_s=30) == 0


def test_circuit_views_for_live_status() -> None:
    opened = circuits.Circuit("gemini", "open", NOW, 1, 0.6, NOW + timedelta(seconds=60), None, "w1")
    v = circuit_view("gemini", opened, now=NOW)
    assert (v.state, v.failure_rate, v.next_probe_at, v.probing, v.level) == ("open", 0.6, opened.next_probe_at,
                                                                             None, 1)
    due = circuit_view("gemini", opened, now=NOW + timedelta(seconds=61))
    assert (due.state, due.next_probe_at, due.probing) == ("half_open", None, None)
    claimed = circuits.Circuit("gemini", "half_open", NOW, 1, 0.6, None, NOW + timedelta(seconds=45), "w2")
    assert circuit_view("gemini", claimed, now=NOW).probing == "w2"
    assert circuit_view("gemini", claimed, now=NOW + timedelta(seconds=50)).probing is None  # the claim lapsed
    closed = circuit_view("gemini", None, now=NOW, calls=(200, 24))
    assert (closed.state, closed.failure_rate, closed.calls, closed.since) == ("closed", 0.12, 200, None)
    assert circuit_view("gemini", None, now=NOW).failure_rate is None


def test_provider_health_reports_each_circuit_and_its_failure_rate(any_settings: Settings) -> None:
    org = _org()
    with service_session() as s:
        for worker, calls, failures in (("w1", 100, 10), ("w2", 60, 14)):
            s.add(AiProviderHealth(organization_id=org, provider_name="gemini", status="degraded", error_rate=0.1,
                                   last_check=NOW - timedelta(minutes=2),
                                   error_details={"source": "worker", "worker": worker, "calls": calls,
                                                  "failures": failures}))
    gemini = next(p for p in provider_health(organization_id=org, now=NOW).providers if p.provider == "gemini")
    assert (gemini.circuit.state, gemini.circuit.calls) == ("closed", 160)
    assert gemini.circuit.failure_rate == pytest.approx(24 / 160)
    _write(org, state="open", level=2, failure_rate=0.55, next_probe_at=NOW + timedelta(minutes=2))
    gemini = next(p for p in provider_health(organization_id=org, now=NOW).providers if p.provider == "gemini")
    assert (gemini.circuit.state, gemini.circuit.failure_rate, gemini.circuit.level) == ("open", 0.55, 2)
    assert gemini.status == "down"  # the breaker row is the provider's newest check


def test_the_paused_banner_gets_the_circuit_of_a_circuit_pause_only(any_settings: Settings) -> None:
    org = _org()
    _write(org, state="open", level=1, failure_rate=0.6, next_probe_at=NOW + timedelta(seconds=90))
    with service_session() as s:
        cfg = config_row.lock_or_create(s, org)
        config_row.pause(cfg, kind=config_row.MANUAL, reason="maintenance", by=None, now=NOW)
    cards = live_status.status_cards(organization_id=org, now=NOW)
    assert cards.paused and cards.pause_kind == "manual" and cards.paused_circuit is None
    with service_session() as s:
        cfg = config_row.lock_or_create(s, org)
        config_row.pause(cfg, kind=config_row.CIRCUIT_OPEN, reason="Provider circuit open: gemini", by=None,
                         now=NOW)
    cards = live_status.status_cards(organization_id=org, now=NOW)
    assert cards.paused_circuit is not None
    assert (cards.paused_circuit.provider, cards.paused_circuit.state) == ("gemini", "open")
    assert cards.paused_circuit.next_probe_at == NOW + timedelta(seconds=90)
    snap = live_status.live_snapshot(organization_id=org, now=NOW)
    assert snap.status.paused_circuit == cards.paused_circuit


def test_clock_time_is_for_people() -> None:
    assert fmt.clock_time(NOW + timedelta(seconds=95), NOW) == "14:01:35 UTC (in 2 min)"
    assert fmt.clock_time(NOW + timedelta(seconds=30), NOW, "Europe/Berlin") == "15:00:30 CET (in 30 s)"
    assert fmt.clock_time(NOW - timedelta(seconds=5), NOW, "UTC") == "13:59:55 UTC (5 s ago)"
    assert fmt.clock_time(NOW + timedelta(hours=12), NOW, "America/New_York") == "21:00:00 EST (in 12 h)"
    assert fmt.clock_time(NOW + timedelta(hours=18), NOW, "America/New_York") == "2026-03-03 03:00:00 EST (in 18 h)"
    assert fmt.clock_time(NOW + timedelta(hours=11), NOW, "Asia/Tokyo") == "2026-03-03 10:00:00 JST (in 11 h)"
    assert fmt.clock_time(NOW, NOW) == "14:00:00 UTC (now)"
    assert fmt.clock_time(None, NOW) == "—"
