"""The in-process cache: round trips, TTL expiry, prefixes, isolation from caller mutation, signatures."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import pytest

from aiconsole.platform import cache
from aiconsole.platform.settings import Settings


@dataclass(frozen=True)
class Point:
    x: int
    y: float


class Counter:
    def __init__(self, value: object) -> None:
        self.calls = 0
        self.value = value

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def test_memory_backend_when_no_redis(settings: Settings) -> None:
    assert cache.get_cache(settings).backend == "memory"


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None, "x"]}, Point(1, 2.0), None, 0, ("t", 1)])
def test_round_trip_computes_once(settings: Settings, value: object) -> None:
    fn = Counter(value)
    assert cache.cached(("t", 1), 60, fn) == value
    assert cache.cached(("t", 1), 60, fn) == value
    assert fn.calls == 1


def test_dataframe_is_isolated_from_caller_mutation(settings: Settings) -> None:
    df = pd.DataFrame({"a": [1, 2, 3]})
    first = cache.cached(("df",), 60, lambda: df)
    first.loc[0, "a"] = 99
    second = cache.cached(("df",), 60, lambda: pd.DataFrame())
    assert second["a"].tolist() == [1, 2, 3]


def test_ttl_expiry(settings: Settings) -> None:
    fn = Counter("v")
    cache.cached(("ttl",), 0.05, fn)
    cache.cached(("ttl",), 0.05, fn)
    assert fn.calls == 1
    time.sleep(0.08)
    cache.cached(("ttl",), 0.05, fn)
    assert fn.calls == 2


def test_zero_ttl_always_computes(settings: Settings) -> None:
    fn = Counter("v")
    for _ in range(3):
        cache.cached(("zero",), 0, fn)
    assert fn.calls == 3


def test_invalidate_prefix(settings: Settings) -> None:
    a, b, c = Counter(1), Counter(2), Counter(3)
    cache.cached(("live", 7), 60, a)
    cache.cached(("live", 70), 60, b)
    cache.cached(("other", 7), 60, c)
    assert cache.invalidate("live:7") == 2  # "live:7" and "live:70": a plain key prefix
    cache.cached(("live", 7), 60, a)
    cache.cached(("other", 7), 60, c)
    assert (a.calls, c.calls) == (2, 1)


def test_reset_cache_forgets_entries(settings: Settings) -> None:
    fn = Counter(5)
    cache.cached(("r",), 60, fn)
    cache.reset_cache()
    cache.cached(("r",), 60, fn)
    assert fn.calls == 2


def test_keys_are_namespaced_by_database(settings: Settings) -> None:
    key = cache.cache_key(("live", 3), settings)
    assert key.startswith("aiconsole:") and key.endswith(":live:3")
    other = settings.model_copy(update={"database_url": "sqlite:////elsewhere.db"})
    assert cache.cache_key(("live", 3), other) != key


def test_pickle_signed_by_another_key_is_refused() -> None:
    ours = cache._Codec(b"k" * 32)
    theirs = cache._Codec(b"z" * 32)
    blob = theirs.dumps(Point(1, 2.0))
    assert ours.loads(ours.dumps(Point(1, 2.0))) == Point(1, 2.0)
    assert cache.is_miss(ours.loads(blob))
    assert cache.is_miss(ours.loads(b"p" + b"short"))


def test_memory_cache_is_bounded() -> None:
    mem = cache.MemoryCache("aiconsole:x:", cache._Codec(b"k" * 32), max_entries=3)
    for i in range(5):
        mem.set(f"k{i}", i, 60)
    assert [cache.is_miss(mem.get(f"k{i}")) for i in range(5)] == [True, True, False, False, False]
