"""Routing: rate windows, the in-process limiter, circuit breakers and fallback."""

from __future__ import annotations

import bisect
import itertools
import threading
import uuid

import pytest

from aiconsole.pipeline.rate_limit import RateLimiter, rate_window
from aiconsole.pipeline.routing import CircuitBreaker, NoRouteAvailable, is_provider_fault, route
from aiconsole.platform.errors import InfrastructureFault, ProviderError, ValidationFailed


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


class SimClock:
    """Simulated time for the limiter: only its own sleeps move it (plus `late_s` oversleep per sleep)."""

    def __init__(self, late_s: float = 0.0) -> None:
        self.t = 1000.0
        self.late_s = late_s

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return 1.7e9 + self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds + self.late_s


def _limiter(per_minute: int, clock: SimClock, **options: float) -> RateLimiter:
    return RateLimiter("local", per_minute, scope=uuid.uuid4().hex, clock=clock, **options)  # type: ignore[arg-type]


def test_the_memory_limiter_paces_and_never_exceeds_its_guarded_window() -> None:
    clock = SimClock()
    limiter = _limiter(600, clock, warmup_s=0)  # 10 per second, steady state
    start, stamps = clock.t, []
    while clock.t - start < 2.6:
        if limiter.acquire(0.5):
            stamps.append(clock.t - start)
    assert max_in_window(stamps, 1.04) <= 10  # the window plus its 40 ms guard
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.08 - 1e-9  # paced at 80% of the average spacing: never a burst
    # 0.00-0.72 s, 1.04-1.76 s, 2.08-2.56 s = 27 in 2.6 s; each wait is up to 2 ms longer (jitter).
    assert len([t for t in stamps if t < 2.6]) in (26, 27)
    assert (stamps[10], stamps[20]) == (pytest.approx(1.04, abs=0.01), pytest.approx(2.08, abs=0.02))


def test_threads_and_limiters_of_one_scope_share_one_quota() -> None:
    clock = SimClock()  # acquire(0) never sleeps, so simulated time stands still
    limiter = _limiter(600, clock, warmup_s=0)
    barrier = threading.Barrier(6)
    got: list[bool] = []

    def ask() -> None:
        barrier.wait()
        got.append(limiter.acquire(0))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [False] * 5 + [True]
    scope = uuid.uuid4().hex
    a, b = (RateLimiter("local", 600, scope=scope, clock=clock) for _ in range(2))
    assert a.acquire(0) and not b.acquire(0)  # the same provider and scope: one quota


def test_a_starting_process_keeps_a_wider_guard() -> None:
    for warmup_s, guard in ((60.0, 0.2), (0.0, 0.04)):
        clock = SimClock()
        limiter = _limiter(600, clock, warmup_s=warmup_s, warmup_guard_s=0.2)
        stamps = []
        for _ in range(11):
            assert limiter.acquire(5)
            stamps.append(clock.t)
        # The 11th waits for the 1st to be 1 s + the guard old (1.2 s while warming up, 1.04 s after).
        assert 1 + guard <= stamps[10] - stamps[0] <= 1 + guard + 0.0021


def test_the_guard_grows_with_the_lateness_a_starved_process_sees() -> None:
    clock = SimClock()
    limiter = _limiter(600, clock, warmup_s=0)
    assert limiter.current_guard() == pytest.approx(0.04)
    limiter.note_lateness(0.003)  # ordinary scheduling noise: ignored
    assert limiter.current_guard() == pytest.approx(0.04)
    limiter.note_lateness(0.1)
    assert limiter.current_guard() == pytest.approx(0.2)
    limiter.note_lateness(0.5)
    assert limiter.current_guard() == pytest.approx(0.3)  # capped
    clock.sleep(limiter.LATENESS_WINDOW_S + 0.01)
    assert limiter.current_guard() == pytest.approx(0.04)  # forgotten after the window


def test_the_limiters_own_late_wakeups_widen_its_guard() -> None:
    clock = SimClock(late_s=0.1)  # every sleep wakes up 100 ms late, as on a starved machine
    limiter = _limiter(600, clock, warmup_s=0)
    assert limiter.acquire(1) and limiter.acquire(1)  # the second waits out the 80 ms pacing, and wakes late
    assert limiter.current_guard() == pytest.approx(0.2)


def test_acquire_gives_up_after_its_timeout_and_gets_the_slot_once_it_frees() -> None:
    clock = SimClock()
    limiter = _limiter(60, clock)  # 1 per second; warming up, so guarded by 0.15 s
    assert limiter.acquire(0.0)
    started = clock.t
    assert not limiter.acquire(0.2)
    assert clock.t - started == pytest.approx(0.2)  # waited its timeout, not a moment longer
    assert limiter.acquire(5)
    assert 1.15 <= clock.t - started <= 1.1521


def test_scopes_do_not_share_a_quota() -> None:
    clock = SimClock()
    a, b = _limiter(60, clock), _limiter(60, clock)
    assert a.acquire(0) and b.acquire(0)
    assert not a.acquire(0)


def test_unreachable_redis_is_an_infrastructure_fault_not_the_photos() -> None:
    limiter = RateLimiter("gemini", 600, "redis://127.0.0.1:1/0", scope=uuid.uuid4().hex)
    with pytest.raises(InfrastructureFault) as err:
        limiter.acquire(0.5)
    assert not isinstance(err.value, ProviderError) and err.value.component == "Redis"
    assert "AICONSOLE_REDIS_URL" in str(err.value) and "ConnectionError" in str(err.value)


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


def test_failed_probe_reopens_for_a_doubled_pause() -> None:
    clock = FakeClock()
    b = CircuitBreaker("v", error_rate=0.5, window_s=30, min_calls=2, open_s=5, clock=clock)
    b.record(False)
    b.record(False)
    clock.t += 5
    assert b.allow()
    b.record(False)
    assert b.state == "open" and b.reopens_in_s() == pytest.approx(10)  # backs off (tests/unit/test_breaker_backoff.py)


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
