"""Routing: rate windows, the in-process limiter, circuit breakers, fallback and the budget guard."""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.control import queue_actions as queue_control
from aiconsole.pipeline.routing import (
    BudgetGuard,
    CircuitBreaker,
    NoRouteAvailable,
    RateLimiter,
    is_provider_fault,
    rate_window,
    route,
)
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, AuditLog, Photo, PipelineConfig, ProcessingRollupHourly
from aiconsole.platform.errors import ProviderError, ValidationFailed
from aiconsole.platform.settings import Settings


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most events inside any half-open window of `window` seconds."""
    ts = sorted(times)
    return max((bisect.bisect_left(ts, t + window) - i for i, t in enumerate(ts)), default=0)


# ------------------------------------------------------------------------------------------ rate limit


@pytest.mark.parametrize(("per_minute", "expected"), [
    (600, (10, 1)), (3000, (50, 1)), (90, (3, 2)), (50, (5, 6)), (40, (2, 3)), (7, (7, 60)), (1, (1, 60)),
])
def test_rate_window_is_the_shortest_exact_whole_second_window(per_minute: int, expected: tuple[int, int]) -> None:
    assert rate_window(per_minute) == expected


def test_rate_window_refuses_zero() -> None:
    with pytest.raises(ValidationFailed, match="lets nothing through"):
        rate_window(0)


def test_memory_limiter_never_exceeds_its_rate_across_threads() -> None:
    limiter = RateLimiter("local", 600, scope=uuid.uuid4().hex, warmup_s=0)  # 10 per second, steady state
    stamps: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + 2.6

    def spin() -> None:
        while time.monotonic() < end:
            if limiter.acquire(0.5):
                with lock:
                    stamps.append(time.monotonic())

    threads = [threading.Thread(target=spin) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_in_window(stamps) <= 10
    # Paced 80 ms apart, 10 per 1.04 s: 0.00-0.72 s, 1.04-1.76 s, 2.08-2.56 s = 27 in 2.6 s; on a busy
    # machine a few less.
    assert len(stamps) >= 20
    gaps = [b - a for a, b in zip(sorted(stamps), sorted(stamps)[1:], strict=False)]
    assert min(gaps) >= 0.04  # never a burst (stamps are taken after acquire returns: some scheduling jitter)


def test_a_starting_process_keeps_a_wider_guard() -> None:
    limiter = RateLimiter("local", 600, scope=uuid.uuid4().hex, warmup_s=60, warmup_guard_s=0.2)
    stamps = []
    for _ in range(11):
        assert limiter.acquire(5)
        stamps.append(time.monotonic())
    assert stamps[10] - stamps[0] >= 1.19  # the 11th waits for the 1st to be 1.2 s old, not 1.04 s


def test_the_guard_grows_with_the_lateness_a_starved_process_sees() -> None:
    limiter = RateLimiter("local", 600, scope=uuid.uuid4().hex, warmup_s=0)
    assert limiter.current_guard() == pytest.approx(0.04)
    limiter.note_lateness(0.003)  # ordinary scheduling noise: ignored
    assert limiter.current_guard() == pytest.approx(0.04)
    limiter.note_lateness(0.1)
    assert limiter.current_guard() == pytest.approx(0.2)
    limiter.note_lateness(0.5)
    assert limiter.current_guard() == pytest.approx(0.3)  # capped
    limiter.LATENESS_WINDOW_S = 0.0  # type: ignore[misc]
    time.sleep(0.01)
    assert limiter.current_guard() == pytest.approx(0.04)  # forgotten after the window


def test_acquire_gives_up_after_its_timeout() -> None:
    limiter = RateLimiter("gemini", 60, scope=uuid.uuid4().hex)  # 1 per second
    assert limiter.acquire(0.0)
    started = time.monotonic()
    assert not limiter.acquire(0.2)
    assert 0.19 <= time.monotonic() - started < 0.6


def test_scopes_do_not_share_a_quota() -> None:
    a = RateLimiter("gemini", 60, scope=uuid.uuid4().hex)
    b = RateLimiter("gemini", 60, scope=uuid.uuid4().hex)
    assert a.acquire(0) and b.acquire(0)
    assert not a.acquire(0)


def test_unreachable_redis_is_a_retryable_connection_error() -> None:
    limiter = RateLimiter("gemini", 600, "redis://127.0.0.1:1/0", scope=uuid.uuid4().hex)
    with pytest.raises(ProviderError) as err:
        limiter.acquire(0.5)
    assert err.value.kind == "connection" and err.value.retryable
    assert "AICONSOLE_REDIS_URL" in str(err.value)


# ------------------------------------------------------------------------------------- circuit breaker


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_on_error_rate_half_opens_and_closes_on_a_good_probe() -> None:
    clock = FakeClock()
    b = CircuitBreaker("gemini", error_rate=0.5, window_s=30, min_calls=4, open_s=10, clock=clock)
    for ok in (False, False, False):
        b.record(ok)
    assert b.state == "closed"  # 3 calls: below min_calls
    b.record(True)
    assert b.state == "open"  # 3 of 4 failed once min_calls is met
    assert not b.allow()
    assert b.reopens_in_s() == pytest.approx(10)
    clock.t += 10
    assert b.state == "half_open"
    assert b.allow()          # the one probe
    assert not b.allow()      # no second probe while it is out
    b.record(True)
    assert b.state == "closed" and b.allow()


def test_breaker_opens_exactly_at_threshold() -> None:
    clock = FakeClock()
    b = CircuitBreaker("v", error_rate=0.5, window_s=30, min_calls=4, open_s=10, clock=clock)
    for ok in (True, True, False):
        b.record(ok)
    assert b.state == "closed"
    b.record(False)  # 2 of 4 = 50%
    assert b.state == "open"


def test_failed_probe_reopens_for_another_pause() -> None:
    clock = FakeClock()
    b = CircuitBreaker("v", error_rate=0.5, window_s=30, min_calls=2, open_s=5, clock=clock)
    b.record(False)
    b.record(False)
    clock.t += 5
    assert b.allow()
    b.record(False)
    assert b.state == "open" and b.reopens_in_s() == pytest.approx(5)


def test_old_failures_leave_the_window() -> None:
    clock = FakeClock()
    b = CircuitBreaker("v", error_rate=0.5, window_s=30, min_calls=4, open_s=5, clock=clock)
    for _ in range(3):
        b.record(False)
    clock.t += 31
    for _ in range(3):
        b.record(True)
    b.record(False)  # 1 of 4 in the window
    assert b.state == "closed"


def test_provider_faults_count_but_refused_photos_do_not() -> None:
    assert is_provider_fault(ProviderError("x", kind="server_error", retryable=True))
    assert is_provider_fault(ProviderError("x", kind="timeout", retryable=True))
    assert is_provider_fault(ProviderError("x", kind="auth", retryable=False))
    assert not is_provider_fault(ProviderError("x", kind="blocked", retryable=False))
    assert not is_provider_fault(ProviderError("x", kind="bad_request", retryable=False))
    assert is_provider_fault(RuntimeError("unexpected"))
    assert not is_provider_fault(None)


# ---------------------------------------------------------------------------------------------- route


class Cfg:
    def __init__(self, provider: str, model: str, fallback: str | None) -> None:
        self.active_provider = provider
        self.active_model = model
        self.fallback_provider = fallback


def _open(name: str, clock: FakeClock) -> CircuitBreaker:
    b = CircuitBreaker(name, min_calls=1, open_s=30, clock=clock)
    b.record(False)
    assert b.state == "open"
    return b


def test_route_uses_the_primary_while_its_circuit_is_closed() -> None:
    clock = FakeClock()
    d = route(Cfg("gemini", "gemini-2.5-flash", "local"), {"gemini": CircuitBreaker("gemini", clock=clock)})
    assert (d.provider, d.model, d.fallback) == ("gemini", "gemini-2.5-flash", False)
    assert d.trace()["step"] == "route" and "primary gemini" in d.reason


def test_route_falls_back_while_the_primary_is_open_and_returns_after_recovery() -> None:
    clock = FakeClock()
    breakers = {"gemini": _open("gemini", clock), "local": CircuitBreaker("local", clock=clock)}
    cfg = Cfg("gemini", "gemini-2.5-flash", "local")
    d = route(cfg, breakers, fallback_model=lambda p: {"local": "local-analyzer-v1"}[p])
    assert (d.provider, d.model, d.fallback) == ("local", "local-analyzer-v1", True)
    assert "circuit of gemini is open" in d.reason
    clock.t += 30
    probe = route(cfg, breakers)
    assert probe.provider == "gemini" and "half-open probe" in probe.reason
    assert route(cfg, breakers).provider == "local"  # the probe is still out
    breakers["gemini"].record(True)
    assert route(cfg, breakers).provider == "gemini"


def test_no_route_when_the_primary_is_open_and_there_is_no_fallback() -> None:
    clock = FakeClock()
    with pytest.raises(NoRouteAvailable) as err:
        route(Cfg("gemini", "m", None), {"gemini": _open("gemini", clock)})
    assert err.value.provider == "gemini"
    assert err.value.reopens_in_s == pytest.approx(30)
    assert str(err.value).startswith("Provider circuit open: gemini failed 100% of recent calls and no fallback")


# --------------------------------------------------------------------------------------- budget guard


NOW = datetime(2025, 3, 14, 15, 20, tzinfo=UTC)


def _result(org: int, photo: int, cost: int, at: datetime) -> AiProcessingResult:
    return AiProcessingResult(organization_id=org, photo_id=photo, ai_provider="gemini", model="m",
                              status="completed", tags=[], api_cost_micros=cost, created_at=at)


@pytest.fixture
def budget_org(any_settings: Settings) -> int:
    org = users.create_organization(name=f"Budget {uuid.uuid4().hex[:6]}", timezone="UTC").id
    with service_session() as s:
        s.add(PipelineConfig(organization_id=org, daily_budget_micros=1_000_000, monthly_budget_micros=5_000_000))
        photo = Photo(organization_id=org, sha256="a" * 64, storage_uri="photos/x", filename="x.jpg",
                      content_type="image/jpeg", byte_size=1, width=1, height=1)
        s.add(photo)
        s.flush()
        # 0.40 in a whole hour earlier today (rollup) + 0.35 this hour (results): 0.75 today.
        s.add(ProcessingRollupHourly(organization_id=org, hour=datetime(2025, 3, 14, 9, tzinfo=UTC),
                                     ai_provider="gemini", results_count=4, completed_count=4, cost_micros=400_000))
        s.add(_result(org, photo.id, 350_000, NOW - timedelta(minutes=5)))
        # Yesterday counts for the month only.
        s.add(ProcessingRollupHourly(organization_id=org, hour=datetime(2025, 3, 13, 9, tzinfo=UTC),
                                     ai_provider="gemini", results_count=9, completed_count=9, cost_micros=3_000_000))
    return org


def test_budget_guard_reads_spend_and_does_not_pause_under_budget(budget_org: int) -> None:
    status = BudgetGuard().check(budget_org, now=NOW)
    assert (status.spent_today_micros, status.spent_month_micros) == (750_000, 3_750_000)
    assert status.reason is None and not status.paused_now


def test_budget_guard_pauses_once_with_the_reason_audited_as_the_worker(budget_org: int) -> None:
    with service_session() as s:
        photo_id = s.scalar(select(Photo.id).where(Photo.organization_id == budget_org))
        s.add(_result(budget_org, int(photo_id or 0), 300_000, NOW - timedelta(minutes=1)))
    status = BudgetGuard().check(budget_org, now=NOW)
    assert status.spent_today_micros == 1_050_000
    assert status.paused_now
    assert status.reason == "Daily budget of $1.00 reached ($1.05 spent today)."
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None and cfg.paused and cfg.pause_reason == status.reason
        entries = s.scalars(select(AuditLog).where(AuditLog.organization_id == budget_org,
                                                   AuditLog.action == "queue.pause")).all()
    assert [(e.actor, (e.after or {}).get("pause_reason")) for e in entries] == [("system:worker", status.reason)]
    again = BudgetGuard().check(budget_org, now=NOW)
    assert again.reached and not again.paused_now  # already paused: no second audit entry


def test_monthly_budget_pauses_too(budget_org: int) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.daily_budget_micros = None
        cfg.monthly_budget_micros = 3_500_000
    status = BudgetGuard().check(budget_org, now=NOW)
    assert status.reason == "Monthly budget of $3.50 reached ($3.75 spent this month)."


def test_guard_lifts_only_its_own_pause_once_spend_is_under_budget(budget_org: int) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None
        cfg.daily_budget_micros = 700_000
    guard = BudgetGuard()
    assert guard.check(budget_org, now=NOW).paused_now
    assert not guard.resume_if_clear(budget_org, now=NOW)  # still over
    # The next day: today's spend is 0 again.
    assert guard.resume_if_clear(budget_org, now=NOW + timedelta(days=1))
    with service_session() as s:
        cfg = s.get(PipelineConfig, budget_org)
        assert cfg is not None and not cfg.paused
        resumed = s.scalars(select(AuditLog.summary).where(AuditLog.organization_id == budget_org,
                                                           AuditLog.action == "queue.resume")).all()
    assert len(resumed) == 1 and "under the budgets" in resumed[0]
    # A pause someone set by hand is never lifted by the guard.
    queue_control.pause(Actor.system("test", budget_org), reason="maintenance", now=NOW)
    assert not guard.resume_if_clear(budget_org, now=NOW + timedelta(days=2))


def test_no_budgets_means_no_check(any_settings: Settings) -> None:
    org = users.create_organization(name="No budget").id
    status = BudgetGuard().check(org)
    assert status == status.__class__(org, 0, 0, None, None, None, False)


def test_the_worker_does_not_import_pandas() -> None:
    import subprocess
    import sys

    probe = ("import sys, aiconsole.pipeline.worker, aiconsole.cli.pipeline; "
             "print(sorted({'pandas', 'skimage'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # a worker's memory stays small (<= 200 MB at concurrency 32)
