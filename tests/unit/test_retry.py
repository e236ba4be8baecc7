"""The retry policy: which failures are retried, and the backoff schedule with its jitter bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aiconsole.pipeline.retry import RetryPolicy
from aiconsole.platform.errors import ConfigError


def test_retries_only_retryable_failures_within_the_attempt_budget() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(attempts=1, retryable=True)
    assert policy.should_retry(attempts=2, retryable=True)
    assert not policy.should_retry(attempts=3, retryable=True)
    assert not policy.should_retry(attempts=4, retryable=True)
    assert not policy.should_retry(attempts=1, retryable=False)
    assert not RetryPolicy(max_attempts=1).should_retry(attempts=1, retryable=True)


def test_delays_double_per_attempt_and_stop_at_the_cap_without_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=2.0, max_delay_s=30.0, jitter=0.0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert policy.delay_s(0) == 2.0  # treated as the first attempt
    assert policy.delay_s(10_000) == 30.0  # no float overflow on absurd attempt counts


def test_jitter_stays_within_its_band_and_is_reproducible() -> None:
    policy = RetryPolicy(base_delay_s=10.0, max_delay_s=1000.0, jitter=0.2)
    delays = [policy.delay_s(1, rng=random.Random(seed)) for seed in range(500)]
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert max(delays) - min(delays) > 3.0  # it really spreads
    assert policy.delay_s(3, rng=random.Random(7)) == policy.delay_s(3, rng=random.Random(7))
    capped = RetryPolicy(base_delay_s=10.0, max_delay_s=10.0, jitter=0.5)
    assert all(capped.delay_s(5, rng=random.Random(s)) <= 10.0 for s in range(100))


def test_next_attempt_at_adds_the_delay() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    policy = RetryPolicy(base_delay_s=2.0, jitter=0.0)
    assert policy.next_attempt_at(now, 3) == now + timedelta(seconds=8)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay_s": -1.0},
                                    {"base_delay_s": 10.0, "max_delay_s": 5.0}, {"jitter": 1.5}])
def test_inconsistent_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
