"""The read-query cache: Redis when `AICONSOLE_REDIS_URL` is set, an in-process TTL cache otherwise.

Both serve one interface. Keys are namespaced `aiconsole:<database fingerprint>:...` so two consoles on
different databases can share one Redis. Redis being down never breaks a page: the cache steps aside,
logs once, and callers compute directly until Redis answers again.

Values are stored as JSON when they are plain JSON data and as pickles otherwise; a pickle is signed
with an HMAC of the console's secret key and refused unless the signature matches, so whoever can
write to Redis still cannot make the console unpickle their bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import pickle
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol, TypeVar

from aiconsole.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "aiconsole:"
_MISS = object()
_JSON_TAG = b"j"
_PICKLE_TAG = b"p"
# After a Redis failure, don't try again for this long: a blackholed host would otherwise cost a
# socket timeout on every fragment refresh.
REDIS_RETRY_SECONDS = 15.0
REDIS_SOCKET_TIMEOUT = 0.5


class Cache(Protocol):
    """What every cache backend offers."""

    backend: str

    def get(self, key: str) -> Any:
        """The value under `key`, or the module's miss sentinel (see `is_miss`)."""

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store `value` under `key` for `ttl` seconds."""

    def invalidate(self, prefix: str) -> int:
        """Drop every key starting with `prefix`; return how many were dropped."""

    def clear(self) -> None:
        """Drop every key of this namespace."""


def is_miss(value: Any) -> bool:
    """Whether a `Cache.get` answer means "not cached"."""
    return value is _MISS


def _is_plain_json(value: Any) -> bool:
    # Round-tripping must give back an equal value, so only types JSON preserves exactly.
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_is_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    return False


class _Codec:
    """Turns values into signed bytes and back."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()

    def dumps(self, value: Any) -> bytes:
        if _is_plain_json(value):
            return _JSON_TAG + json.dumps(value, separators=(",", ":")).encode()
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return _PICKLE_TAG + self._sign(body) + body

    def loads(self, data: bytes) -> Any:
        tag, rest = data[:1], data[1:]
        if tag == _JSON_TAG:
            return json.loads(rest)
        if tag == _PICKLE_TAG and len(rest) > 32:
            signature, body = rest[:32], rest[32:]
            if hmac.compare_digest(signature, self._sign(body)):
                return pickle.loads(body)  # noqa: S301 - signed by our own key just above
        log.warning("Ignoring a cache entry with a bad signature or format (written by another secret key?).")
        return _MISS


class MemoryCache:
    """An in-process TTL cache (one per process; bounded so a long-running console cannot grow it forever)."""

    backend = "memory"

    def __init__(self, namespace: str, codec: _Codec, max_entries: int = 2048) -> None:
        self._namespace = namespace
        self._codec = codec
        self._max = max_entries
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The value under `key`, or the miss sentinel when absent or expired."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return _MISS
            expires, blob = item
            if expires <= time.monotonic():
                del self._data[key]
                return _MISS
        # Stored as bytes so a caller mutating its DataFrame cannot change the cached copy.
        return self._codec.loads(blob)

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store `value` for `ttl` seconds."""
        blob = self._codec.dumps(value)
        now = time.monotonic()
        with self._lock:
            if len(self._data) >= self._max and key not in self._data:
                for k in [k for k, (exp, _) in self._data.items() if exp <= now]:
                    del self._data[k]
                while len(self._data) >= self._max:
                    del self._data[next(iter(self._data))]  # oldest insertion first
            self._data[key] = (now + ttl, blob)

    def invalidate(self, prefix: str) -> int:
        """Drop keys starting with `prefix`."""
        with self._lock:
            doomed = [k for k in self._data if k.startswith(prefix)]
            for k in doomed:
                del self._data[k]
        return len(doomed)

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._data.clear()


class RedisCache:
    """A Redis-backed cache; every operation raises redis errors to the caller (see `cached`)."""

    backend = "redis"

    def __init__(self, url: str, namespace: str, codec: _Codec) -> None:
        import redis

        self._namespace = namespace
        self._codec = codec
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_SOCKET_TIMEOUT, socket_timeout=REDIS_SOCKET_TIMEOUT
        )

    def get(self, key: str) -> Any:
        """The value under `key`, or the miss sentinel."""
        data = self.client.get(key)
        if data is None:
            return _MISS
        return self._codec.loads(bytes(data))  # type: ignore[arg-type]

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store `value` with a TTL (milliseconds precision)."""
        self.client.set(key, self._codec.dumps(value), px=max(1, int(ttl * 1000)))

    def invalidate(self, prefix: str) -> int:
        """Delete keys starting with `prefix` (SCAN, so Redis is never blocked by KEYS)."""
        pattern = _glob_escape(prefix) + "*"
        dropped = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                dropped += int(self.client.unlink(*batch))  # type: ignore[arg-type]
                batch.clear()
        if batch:
            dropped += int(self.client.unlink(*batch))  # type: ignore[arg-type]
        return dropped

    def clear(self) -> None:
        """Delete this namespace's keys."""
        self.invalidate(self._namespace)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.caches: dict[tuple[str, str | None], Cache] = {}
        self.memory: dict[str, MemoryCache] = {}
        self.redis_down_until: dict[str, float] = {}
        self.redis_logged_down: set[str] = set()


_state = _State()


def _namespace(settings: Settings) -> str:
    # A fingerprint of the database URL: consoles on different databases never read each other's entries.
    fp = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:10]
    return f"{PREFIX}{fp}:"


def _codec(settings: Settings) -> _Codec:
    return _Codec(hashlib.sha256(b"aiconsole-cache:" + settings.resolved_secret_key().encode()).digest())


def _memory(settings: Settings) -> MemoryCache:
    ns = _namespace(settings)
    with _state.lock:
        cache = _state.memory.get(ns)
        if cache is None:
            cache = _state.memory[ns] = MemoryCache(ns, _codec(settings))
        return cache


def get_cache(settings: Settings | None = None) -> Cache:
    """The cache for the configured Redis, or the in-process one when no Redis URL is set."""
    settings = settings or get_settings()
    if not settings.redis_url:
        return _memory(settings)
    key = (_namespace(settings), settings.redis_url)
    with _state.lock:
        cache = _state.caches.get(key)
    if cache is None:
        cache = RedisCache(settings.redis_url, key[0], _codec(settings))
        with _state.lock:
            cache = _state.caches.setdefault(key, cache)
    return cache


def cache_key(key_parts: Iterable[Hashable], settings: Settings | None = None) -> str:
    """The full namespaced key for `key_parts`, e.g. ("live", 7) -> "aiconsole:<fp>:live:7"."""
    return _namespace(settings or get_settings()) + ":".join(str(p) for p in key_parts)


def _redis_usable(url: str) -> bool:
    with _state.lock:
        return _state.redis_down_until.get(url, 0.0) <= time.monotonic()


def _redis_failed(url: str, err: Exception) -> None:
    with _state.lock:
        _state.redis_down_until[url] = time.monotonic() + REDIS_RETRY_SECONDS
        first = url not in _state.redis_logged_down
        _state.redis_logged_down.add(url)
    if first:
        log.warning(
            "Redis at %s is not answering (%s); computing without the cache until it is back. "
            "Check that Redis is running or unset AICONSOLE_REDIS_URL.", _redact(url), err,
        )


def _redis_ok(url: str) -> None:
    if url in _state.redis_logged_down:
        with _state.lock:
            _state.redis_logged_down.discard(url)
            _state.redis_down_until.pop(url, None)
        log.info("Redis at %s answers again; the cache is back.", _redact(url))


def _redact(url: str) -> str:
    # redis://user:password@host -> redis://***@host
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def cached(key_parts: Iterable[Hashable], ttl: float, fn: Callable[[], T], *,
           settings: Settings | None = None) -> T:
    """`fn()`'s value, served from the cache for `ttl` seconds; ttl <= 0 always computes.

    A Redis error is logged once and the value is computed directly; it never reaches the caller.
    """
    if ttl <= 0:
        return fn()
    settings = settings or get_settings()
    key = cache_key(key_parts, settings)
    url = settings.redis_url
    if url and not _redis_usable(url):
        return fn()
    try:
        cache = get_cache(settings)
        hit = cache.get(key)
    except Exception as err:  # redis.RedisError, OSError, a broken pickle: all mean "no cache now"
        if not url:
            raise
        _redis_failed(url, err)
        return fn()
    if not is_miss(hit):
        if url:
            _redis_ok(url)
        return hit  # type: ignore[no-any-return]
    value = fn()
    try:
        cache.set(key, value, ttl)
        if url:
            _redis_ok(url)
    except Exception as err:
        if not url:
            raise
        _redis_failed(url, err)
    return value


def invalidate(prefix: str, *, settings: Settings | None = None) -> int:
    """Drop cached entries whose key parts start with `prefix` (e.g. "live:7"); 0 when Redis is down."""
    settings = settings or get_settings()
    full = _namespace(settings) + prefix
    url = settings.redis_url
    if url and not _redis_usable(url):
        return 0
    try:
        return get_cache(settings).invalidate(full)
    except Exception as err:
        if not url:
            raise
        _redis_failed(url, err)
        return 0


# Live Status's cached reads of an organization are keyed (LIVE_PREFIX, organization_id, part); whatever
# changes what it shows (a pause, an upload, a retry) drops them with `invalidate_live`.
LIVE_PREFIX = "live"


def live_key(organization_id: int, part: str) -> tuple[str, int, str]:
    """The key parts of one of Live Status's cached reads of the organization."""
    return (LIVE_PREFIX, organization_id, part)


def invalidate_live(organization_id: int) -> int:
    """Drop the organization's cached Live Status reads so the next refresh shows a change at once."""
    return invalidate(f"{LIVE_PREFIX}:{organization_id}:")


def reset_cache() -> None:
    """Forget every backend, in-process entry and Redis-down note (tests call this between cases)."""
    with _state.lock:
        caches = list(_state.caches.values())
        _state.caches.clear()
        for mem in _state.memory.values():
            mem.clear()
        _state.memory.clear()
        _state.redis_down_until.clear()
        _state.redis_logged_down.clear()
    for cache in caches:
        client = getattr(cache, "client", None)
        if client is not None:
            client.close()
