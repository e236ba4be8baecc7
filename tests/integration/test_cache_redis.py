"""The Redis cache against a real Redis: round trip, TTL expiry, namespacing, tampering, Redis down."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest
import redis

from aiconsole.platform import cache
from aiconsole.platform.settings import Settings, get_settings

pytestmark = pytest.mark.redis


@dataclass(frozen=True)
class Point:
    x: int
    y: float


def _settings_with_redis(monkeypatch: pytest.MonkeyPatch, url: str) -> Settings:
    monkeypatch.setenv("AICONSOLE_REDIS_URL", url)
    get_settings.cache_clear()
    cache.reset_cache()
    return get_settings()


@pytest.fixture
def redis_settings(settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield _settings_with_redis(monkeypatch, redis_url)
    cache.reset_cache()


def test_round_trip_and_namespaced_key(redis_settings: Settings, redis_url: str) -> None:
    calls = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        return pd.DataFrame({"provider": ["gemini"], "n": [3]})

    first = cache.cached(("live", 1), 30, compute)
    second = cache.cached(("live", 1), 30, compute)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first, second)
    assert cache.get_cache().backend == "redis"
    assert cache.cached(("json",), 30, lambda: {"a": [1, 2]}) == {"a": [1, 2]}
    assert cache.cached(("obj",), 30, lambda: Point(1, 0.5)) == Point(1, 0.5)

    client = redis.Redis.from_url(redis_url)
    key = cache.cache_key(("live", 1))
    assert key.startswith("aiconsole:")
    assert client.exists(key) == 1
    assert 0 < client.pttl(key) <= 30_000
    assert client.get(cache.cache_key(("json",))) == b'j{"a":[1,2]}'
    client.close()


def test_ttl_expiry(redis_settings: Settings) -> None:
    calls = []
    cache.cached(("ttl",), 0.2, lambda: calls.append(1))
    cache.cached(("ttl",), 0.2, lambda: calls.append(1))
    assert len(calls) == 1
    time.sleep(0.35)
    cache.cached(("ttl",), 0.2, lambda: calls.append(1))
    assert len(calls) == 2


def test_invalidate_prefix(redis_settings: Settings, redis_url: str) -> None:
    for part in ("live:1", "live:2", "analytics:1"):
        cache.cached((part,), 60, lambda: 1)
    assert cache.invalidate("live:") == 2
    client = redis.Redis.from_url(redis_url)
    assert client.exists(cache.cache_key(("analytics:1",))) == 1
    assert client.exists(cache.cache_key(("live:1",))) == 0
    client.close()


def test_tampered_pickle_is_not_loaded(redis_settings: Settings, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set(cache.cache_key(("evil",)), b"p" + b"\0" * 32 + b"cos\nsystem\n(S'true'\ntR.")
    client.close()
    assert cache.cached(("evil",), 60, lambda: "computed") == "computed"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_down_computes_directly_and_logs_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _settings_with_redis(monkeypatch, f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setattr(cache, "REDIS_RETRY_SECONDS", 0.0)  # try Redis on every call
    calls = []
    with caplog.at_level(logging.WARNING, logger="aiconsole.platform.cache"):
        values = [cache.cached(("x",), 60, lambda: calls.append(1) or len(calls)) for _ in range(3)]
        assert cache.invalidate("x") == 0
    assert values == [1, 2, 3]
    warnings = [r for r in caplog.records if "not answering" in r.getMessage()]
    assert len(warnings) == 1
    assert "AICONSOLE_REDIS_URL" in warnings[0].getMessage()


def test_redis_down_steps_aside_without_retrying(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _settings_with_redis(monkeypatch, f"redis://127.0.0.1:{_closed_port()}/0")
    cache.cached(("y",), 60, lambda: 1)
    started = time.perf_counter()
    for _ in range(50):
        cache.cached(("y",), 60, lambda: 1)
    assert time.perf_counter() - started < 0.05
