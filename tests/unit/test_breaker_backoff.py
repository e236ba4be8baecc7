"""The circuit breaker's back-off on simulated time: a flapping provider cannot pause and resume an organization
in a tight loop (issue 9 item 4), open periods double up to the cap, a real recovery resets them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from aiconsole.pipeline.routing import CircuitBreaker, open_interval

Outcome = Callable[[float, int], bool]  # (seconds into the run, call number) -> whether the call succeeded


def flapping(t: float, _n: int) -> bool:
    """A provider that fails for 3 s of every 8 s (37.5% of the time): each bad spell opens the breaker."""
    return t % 8 >= 3


def always_failing(_t: float, _n: int) -> bool:
    """A provider that is down."""
    return False


class FakeClock:
    """Seconds on a clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Run:
    """What a simulated stretch of traffic did to a breaker."""

    opens: list[float] = field(default_factory=list)  # when it opened (seconds into the run)
    periods: list[float] = field(default_factory=list)  # how long each open period was
    resumes: list[float] = field(default_factory=list)  # when a probe closed it
    calls: int = 0


def simulate(breaker: CircuitBreaker, clock: FakeClock, outcome: Outcome, *, seconds: float,
             calls_per_s: float = 10) -> Run:
    """Offer a call every 1/calls_per_s s for `seconds`; each call the breaker allows ends as `outcome` says."""
    run, start = Run(), clock.t
    state, opened_at = breaker.state, breaker.snapshot().opened_at
    for step in range(round(seconds * calls_per_s)):
        clock.t = start + step / calls_per_s
        if breaker.allow():
            breaker.record(outcome(clock.t - start, run.calls))
            run.calls += 1
        snap = breaker.snapshot()
        if snap.opened_at != opened_at:  # opened (again: a failed probe reopens it within one step)
            run.opens.append(round(clock.t - start, 1))
            run.periods.append(snap.open_for_s)
        elif snap.state == "closed" and state != "closed":
            run.resumes.append(round(clock.t - start, 1))
        state, opened_at = snap.state, snap.opened_at
    return run


def test_a_flapping_provider_pauses_and_resumes_a_bounded_number_of_times_in_two_minutes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", error_rate=0.5, window_s=30, min_calls=10, open_s=5, max_open_s=60,
                             clock=clock)
    run = simulate(breaker, clock, flapping, seconds=120)
    # A fixed 5 s pause resumed 15 times here (a cycle every 8 s, 465 calls); backing off it settles.
    assert 1 <= len(run.resumes) <= 4, run
    assert run.periods == [5, 10, 20, 40, 60][:len(run.periods)] and len(run.periods) >= 2, run
    assert run.calls > 800  # the good spells are served instead of spent paused


def test_a_flapping_provider_under_the_default_breaker_resumes_at_most_twice_in_two_minutes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", clock=clock)  # 50% over 30 s, 10 calls, 30 s open, capped at 300 s
    run = simulate(breaker, clock, flapping, seconds=120)
    assert run.periods[:2] == [30, 60], run
    assert len(run.resumes) <= 2, run


def test_open_periods_double_up_to_the_cap_while_every_probe_fails() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", open_s=30, max_open_s=300, min_calls=1, clock=clock)
    run = simulate(breaker, clock, always_failing, seconds=2000, calls_per_s=1)
    assert run.periods[:7] == [30, 60, 120, 240, 300, 300, 300]
    gaps = [b - a for a, b in zip(run.opens, run.opens[1:], strict=False)]
    assert gaps[:4] == pytest.approx([30, 60, 120, 240], abs=1.01)  # a probe once each period is over


def test_a_real_recovery_resets_the_open_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", window_s=30, min_calls=1, open_s=30, max_open_s=300, clock=clock)
    breaker.record(False)
    clock.t += 30
    assert breaker.allow()
    breaker.record(False)  # the probe fails: 60 s
    assert breaker.snapshot().open_for_s == 60
    clock.t += 60
    assert breaker.allow()
    breaker.record(True)  # the probe succeeds: closed, on probation
    snap = breaker.snapshot()
    assert (snap.state, snap.on_probation, snap.level) == ("closed", True, 1)
    for _ in range(30):  # a full window of good calls
        clock.t += 1
        breaker.record(True)
    assert not breaker.snapshot().on_probation and breaker.snapshot().level == 0
    clock.t += 31  # the good calls leave the window
    breaker.record(False)
    assert breaker.state == "open" and breaker.snapshot().open_for_s == 30  # back to the base period


def test_opening_again_on_probation_doubles_the_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", window_s=30, min_calls=1, open_s=30, clock=clock)
    breaker.record(False)
    clock.t += 30
    assert breaker.allow()
    breaker.record(True)  # closed by the probe
    clock.t += 10  # well inside the recovery period
    breaker.record(False)
    assert breaker.state == "open" and breaker.reopens_in_s() == pytest.approx(60)


def test_half_open_lets_one_probe_out_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", min_calls=1, open_s=30, clock=clock)
    breaker.record(False)
    clock.t += 30
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow() and not breaker.allow()
    breaker.release()  # the probe never went out
    assert breaker.allow() and not breaker.allow()


def test_snapshot_reports_state_failure_rate_and_schedule() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", min_calls=4, open_s=30, clock=clock)
    for ok in (True, False, False, False):
        breaker.record(ok)
    clock.t += 12
    snap = breaker.snapshot()
    assert (snap.state, snap.failure_rate, snap.level, snap.open_for_s) == ("open", 0.75, 0, 30)
    assert snap.reopens_in_s == pytest.approx(18)
    clock.t += 18
    assert breaker.snapshot().state == "half_open" and breaker.snapshot().reopens_in_s == 0


def test_a_shared_level_lengthens_an_open_breaker_and_a_shared_probe_closes_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("gemini", min_calls=1, open_s=30, max_open_s=300, clock=clock)
    breaker.record(False)
    breaker.hold_open(2)  # the organization's circuit has opened twice before: 120 s
    assert breaker.reopens_in_s() == pytest.approx(120)
    breaker.hold_open(1)  # never shortens
    assert breaker.reopens_in_s() == pytest.approx(120)
    clock.t += 40
    breaker.close_on_probation(2)  # another worker's probe succeeded
    snap = breaker.snapshot()
    assert (snap.state, snap.on_probation, snap.level) == ("closed", True, 2)
    breaker.record(False)  # opens again on probation: the next level
    assert breaker.reopens_in_s() == pytest.approx(240)


def test_open_interval_doubles_and_caps() -> None:
    assert [open_interval(k, open_s=30, max_open_s=300) for k in range(6)] == [30, 60, 120, 240, 300, 300]
    assert open_interval(10_000, open_s=30, max_open_s=300) == 300
    assert open_interval(3, open_s=30, max_open_s=10) == 30  # a cap below the base is the base
