"""The shared rate limiter: one provider's requests per minute across every worker of every machine.

Redis (the `limits` package's moving window) when AICONSOLE_REDIS_URL is set, so workers on many machines
share one quota; in-process memory otherwise. A minute is enforced over the shortest whole-second window
that expresses it exactly (600/min -> 10 per 1 s), so a minute's quota never goes out in one burst.
Redis entries carry the workers' clock (time.time()): keep the machines' clocks in sync (NTP).
A Redis that does not answer is an `InfrastructureFault`, not the photo's error: without it the limiter
cannot vouch for the rate, so nothing is sent, and the worker holds its photos until `ping` succeeds.

The in-process limiter reads and sleeps on a `Clock` (the system's by default), so tests drive it on
simulated time instead of measuring a loaded machine's wall clock.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections import deque
from typing import Any, Protocol

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from aiconsole.platform.errors import InfrastructureFault, ValidationFailed

# Whole-second windows that divide a minute; the limiter picks the shortest exact one.
_WINDOWS_S = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
_redis_storages: dict[str, RedisStorage] = {}
_storage_lock = threading.Lock()
KEY_PREFIX = "aiconsole:ratelimit"


class Clock(Protocol):
    """Where the limiter reads the time and how it waits."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, pacing, warm-up)."""

    def time(self) -> float:
        """Seconds since the epoch (the moving window's timestamps)."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""


class SystemClock:
    """The machine's clocks and time.sleep."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def time(self) -> float:
        """time.time()."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """time.sleep(seconds)."""
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


def rate_window(per_minute: int) -> tuple[int, int]:
    """(amount, window seconds): the shortest whole-second window expressing `per_minute` exactly."""
    if per_minute < 1:
        raise ValidationFailed(f"A rate limit of {per_minute} requests per minute lets nothing through.",
                               hint="Set the provider's rate limit to at least 1 request per minute.")
    for window in _WINDOWS_S:
        if (per_minute * window) % 60 == 0:
            return per_minute * window // 60, window
    return per_minute, 60


def _storage(redis_url: str) -> RedisStorage:
    with _storage_lock:
        storage = _redis_storages.get(redis_url)
        if storage is None:
            storage = _redis_storages[redis_url] = RedisStorage(redis_url, key_prefix=KEY_PREFIX,
                                                                socket_timeout=2.0)
        return storage


class _Pacer:
    """Keeps consecutive requests of one limiter at least `interval_s` apart, across processes via Redis.

    One `SET key 1 PX interval NX` per request: it succeeds for one caller per interval; the others learn
    from PTTL how long to wait. In memory it is a lock and the next free instant.
    """

    def __init__(self, key: str, interval_s: float, redis_url: str | None, clock: Clock) -> None:
        self.key = f"{KEY_PREFIX}:pace:{key}"
        self.interval_ms = max(1, round(interval_s * 1000))
        self._redis = _redis_client(redis_url) if redis_url else None
        self._clock = clock
        self._lock = threading.Lock()
        self._next_free = 0.0

    def take(self) -> float:
        """0 when this caller may go now (and the next one must wait), else seconds to wait first."""
        if self._redis is None:
            with self._lock:
                now = self._clock.monotonic()
                if now >= self._next_free:
                    self._next_free = now + self.interval_ms / 1000
                    return 0.0
                return self._next_free - now
        if self._redis.set(self.key, b"1", px=self.interval_ms, nx=True):
            return 0.0
        ttl_ms = int(self._redis.pttl(self.key))
        return max(0.0005, ttl_ms / 1000) if ttl_ms > 0 else 0.0005


_redis_clients: dict[str, Any] = {}
_pacers: dict[str, _Pacer] = {}


def _redis_fault(who: str, exc: BaseException) -> InfrastructureFault:
    return InfrastructureFault("Redis", f"{who} cannot use Redis ({type(exc).__name__}: {exc}).",
                               hint="Check that Redis (AICONSOLE_REDIS_URL) is running; photos wait, no attempt "
                                    "is counted.")


def ping(redis_url: str) -> None:
    """Check that the limiters' Redis answers; InfrastructureFault when it does not."""
    try:
        _redis_client(redis_url).ping()
    except (RedisError, OSError) as exc:
        raise _redis_fault("The shared rate limiter", exc) from exc


def _redis_client(url: str) -> Any:
    import redis

    with _storage_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2.0)
        return client


def _pacer(key: str, interval_s: float, redis_url: str | None, clock: Clock) -> _Pacer:
    name = f"{redis_url}:{key}:{interval_s}:{id(clock)}"
    with _storage_lock:
        pacer = _pacers.get(name)
    if pacer is None:
        pacer = _Pacer(key, interval_s, redis_url, clock)
        with _storage_lock:
            pacer = _pacers.setdefault(name, pacer)
    return pacer


class _RedisWindow:
    """The moving window in Redis (`limits`), shared by every worker; timestamps are time.time()."""

    def __init__(self, redis_url: str, item: RateLimitItemPerSecond, ids: tuple[str, ...]) -> None:
        self._storage = _storage(redis_url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._item, self._ids = item, ids
        self._key = item.key_for(*ids)

    def peek(self, expiry_s: float) -> tuple[float, int]:
        """(the oldest request inside the last `expiry_s`, how many there are)."""
        return self._storage.get_moving_window(self._key, self._item.amount, expiry_s)  # type: ignore[arg-type]

    def hit(self) -> bool:
        """Count one request if the window has room."""
        return bool(self._limiter.hit(self._item, *self._ids))

    def clear(self) -> None:
        """Forget every request."""
        self._limiter.clear(self._item, *self._ids)


class _MemoryWindow:
    """The moving window of this process on `clock`: request times, oldest first, kept for the window plus
    RETAIN_S (longer than any guard a limiter adds), searched by bisection so a decision costs O(log n)
    however high the rate."""

    RETAIN_S = 1.0

    def __init__(self, amount: int, window_s: int, clock: Clock) -> None:
        self.amount, self.window_s, self._clock = amount, window_s, clock
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._start = 0  # times before this index have left the retained span

    def _now(self) -> float:
        now = self._clock.time()
        cutoff = now - self.window_s - self.RETAIN_S
        self._start = bisect.bisect_right(self._times, cutoff, lo=self._start)
        if self._start > 4096 and 2 * self._start > len(self._times):  # compact now and then, not per call
            del self._times[:self._start]
            self._start = 0
        return now

    def peek(self, expiry_s: float) -> tuple[float, int]:
        """(the oldest request inside the last `expiry_s`, how many there are)."""
        with self._lock:
            now = self._now()
            # Like the Redis window, only the newest `amount` requests count: the oldest of those is the one
            # whose leaving frees a slot.
            first = bisect.bisect_right(self._times, now - expiry_s, lo=self._start)
            inside = min(len(self._times) - first, self.amount)
            return (self._times[-inside], inside) if inside else (now, 0)

    def hit(self) -> bool:
        """Count one request unless `amount` of them fall within the window already."""
        with self._lock:
            now = self._now()
            if len(self._times) - bisect.bisect_left(self._times, now - self.window_s, lo=self._start) >= self.amount:
                return False
            # Kept sorted for the bisection even if the wall clock steps back.
            self._times.append(max(now, self._times[-1]) if self._times else now)
            return True

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._times.clear()
            self._start = 0


_memory_windows: dict[tuple[str, int], _MemoryWindow] = {}


def _memory_window(key: str, amount: int, window_s: int, clock: Clock) -> _MemoryWindow:
    # One window per key and clock in a process: limiters of the same provider and scope share it.
    with _storage_lock:
        return _memory_windows.setdefault((key, id(clock)), _MemoryWindow(amount, window_s, clock))


class RateLimiter:
    """A provider's request rate, shared by every worker through Redis (or by this process's threads).

    The quota is the `limits` moving window: at most `amount` requests in any `window_s`. Two
    additions make it hold where it is measured, at the provider, not only where slots are handed out:

    - a guard: the window is enforced `guard_s` longer than it says (600/min: at most 10 in any 1.04 s),
      because the time between taking a slot and the request's arrival varies by some milliseconds;
      it costs `guard_s / window` of the throughput (4% at 1 s windows); for the first `warmup_s` of a
      process the guard is `warmup_guard_s`, as a starting process stalls its threads far longer; and when
      the process is starved of CPU (its sleeps wake up late), twice that lateness, up to 0.3 s;
    - pacing: consecutive requests are at least 80% of the average spacing apart (600/min: 80 ms), so
      a window's quota is not spent in one burst whose requests then queue for the CPU and arrive
      spread out, some of them late enough to crowd the next window. Rates above ~160/s (spacing
      under 5 ms) are not paced; there a burst is short compared to the window.
    """

    PACE_SHARE = 0.8
    MIN_PACE_S = 0.005
    LATENESS_WINDOW_S = 10.0
    MAX_GUARD_S = 0.3

    def __init__(self, provider: str, per_minute: int, redis_url: str | None = None, *, scope: str = "",
                 guard_s: float = 0.04, warmup_s: float = 5.0, warmup_guard_s: float = 0.15,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.provider = provider
        self.per_minute = per_minute
        self.amount, self.window_s = rate_window(per_minute)
        self.guard_s = guard_s
        # A process's first seconds (imports, first statement compiles, new connections) stall threads for
        # up to ~150 ms on a busy machine; meanwhile this limiter keeps a wider guard.
        self.warmup_s = warmup_s
        self.warmup_guard_s = max(guard_s, warmup_guard_s)
        self._first_use: float | None = None
        # Recent (time, seconds) by which this process's sleeps woke up late: a starved process delays its
        # requests by about as much, so the guard grows to twice the worst of the last 10 s (at most 0.3 s).
        self._late: deque[tuple[float, float]] = deque()
        self.item = RateLimitItemPerSecond(self.amount, self.window_s)
        self.backend = "redis" if redis_url else "memory"
        self._clock = clock
        # The scope (e.g. the organization) separates keys that share a provider but not an API key.
        ids = (provider, scope) if scope else (provider,)
        self._key = self.item.key_for(*ids)
        self._window: _RedisWindow | _MemoryWindow = (
            _RedisWindow(redis_url, self.item, ids) if redis_url
            else _memory_window(self._key, self.amount, self.window_s, clock))
        self._local = _local_lock(f"{self.backend}:{redis_url}:{self._key}")
        pace = self.PACE_SHARE * self.window_s / self.amount
        self._pacer = _pacer(self._key, pace, redis_url, clock) if pace >= self.MIN_PACE_S else None

    def acquire(self, timeout_s: float) -> bool:
        """Take one request slot, waiting up to `timeout_s`; False when none freed up in time."""
        deadline = self._clock.monotonic() + max(0.0, timeout_s)
        # One thread per process polls the shared window; the others queue here instead of on Redis.
        if not self._local.acquire(timeout=max(0.0, timeout_s)):
            return False
        try:
            if self._first_use is None:
                self._first_use = self._clock.monotonic()
            while True:
                guard = self.current_guard()
                oldest, count = self._window.peek(self.window_s + guard)
                if count >= self.amount:
                    # Full: sleep until the oldest request leaves the guarded window.
                    wait = oldest + self.window_s + guard - self._clock.time()
                else:
                    wait = self._pacer.take() if self._pacer is not None else 0.0
                    if wait <= 0 and self._window.hit():
                        return True
                    # Otherwise another worker took the slot between our look and our hit: look again.
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    return False
                # A little jitter keeps waiting workers from all trying again at the same instant.
                self._sleep(min(left, max(0.0, wait) + random.uniform(0.0002, 0.002)))
        except (RedisError, OSError) as exc:  # whatever Redis answers, the limiter cannot vouch for the rate
            raise _redis_fault(f"The shared rate limiter for {self.provider}", exc) from exc
        finally:
            self._local.release()

    def current_guard(self) -> float:
        """The guard in force: the warm-up or base guard, or twice the recent sleep lateness if larger."""
        now = self._clock.monotonic()
        first = self._first_use if self._first_use is not None else now
        base = self.guard_s if now - first >= self.warmup_s else self.warmup_guard_s
        while self._late and self._late[0][0] < now - self.LATENESS_WINDOW_S:
            self._late.popleft()
        worst = max((late for _, late in self._late), default=0.0)
        return min(self.MAX_GUARD_S, max(base, 2 * worst))

    def note_lateness(self, seconds: float) -> None:
        """Record that this process woke up `seconds` late (the limiter's own sleeps report it)."""
        if seconds > 0.005:
            self._late.append((self._clock.monotonic(), seconds))

    def _sleep(self, seconds: float) -> None:
        started = self._clock.monotonic()
        self._clock.sleep(seconds)
        self.note_lateness(self._clock.monotonic() - started - seconds)

    def reset(self) -> None:
        """Forget every request counted so far (tests, and after changing the limit)."""
        self._window.clear()


_local_locks: dict[str, threading.Lock] = {}


def _local_lock(name: str) -> threading.Lock:
    with _storage_lock:
        return _local_locks.setdefault(name, threading.Lock())
