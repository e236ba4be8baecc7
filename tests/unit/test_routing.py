"""Routing: rate windows, the in-process limiter, circuit breakers and fallback."""

from __future__ import annotations

import bisect
import threading
import time
import uuid

import pytest

from aiconsole.pipeline.rate_limit import RateLimiter, rate_window
from aiconsole.pipeline.routing import CircuitBreaker, NoRouteAvailable, is_provider_fault, route
from aiconsole.platform.errors import ProviderError, ValidationFailed


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


def test_the_worker_does_not_import_pandas() -> None:
    import subprocess
    import sys

    probe = ("import sys, aiconsole.pipeline.worker, aiconsole.cli.pipeline; "
             "print(sorted({'pandas', 'skimage'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # a worker's memory stays small (<= 200 MB at concurrency 32)
