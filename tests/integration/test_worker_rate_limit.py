"""Rate limit 10 requests/s (600/min) shared through Redis by 3 worker processes for 10+ s: never above it,
measured where it matters, at the provider (the emulator's arrival log)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path

import pytest

from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    enqueue,
    make_org,
    results_per_photo,
    start_workers,
    stop_workers,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals inside any window of `window` seconds (sliding, not aligned to seconds)."""
    ts = sorted(times)
    return max((bisect.bisect_left(ts, t + window) - i for i, t in enumerate(ts)), default=0)


def test_three_workers_never_exceed_ten_per_second_at_the_provider(
        pg_settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch,
        emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> None:
    monkeypatch.setenv("AICONSOLE_REDIS_URL", redis_url)
    get_settings.cache_clear()
    emulator = emulator_factory(latency_ms=(10, 60))
    org = make_org(provider="google-vision", endpoint=emulator.url, rate_per_minute=600)
    ids = enqueue(org, 160, settings=pg_settings)
    procs = start_workers(3, log_dir=tmp_path, concurrency=6, batch_size=6, lease_seconds=60, poll_interval_s=0.1,
                          calls={"rate_limit_timeout_s": 60})
    try:
        wait_until(lambda: len(emulator.request_log) >= 115, timeout_s=90, what="11+ s of requests")
    finally:
        assert stop_workers(procs) == [0, 0, 0]
    arrivals = sorted(t for t, _, _ in emulator.request_log)
    span = arrivals[-1] - arrivals[0]
    assert span >= 10.0
    assert max_in_window(arrivals) <= 10
    # The limit is the bottleneck, and it is used: close to 10/s on average (the first second is a burst).
    assert len(arrivals) - 10 >= 0.9 * 10 * (span - 1.0)
    per_photo = results_per_photo(org)
    assert all(n == 1 for n in per_photo.values()) and len(per_photo) <= len(ids)
