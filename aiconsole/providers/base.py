"""The one small Protocol every vision provider implements, its data types, and shared error helpers.

A provider turns one image into tags. Every failure leaves a provider as a `ProviderError` whose `kind`
says what happened and whose `retryable` says whether trying again can help; the worker's retry policy
decides how often. The kinds:

  rate_limited  HTTP 429 / RESOURCE_EXHAUSTED              retryable
  server_error  HTTP 5xx                                    retryable
  timeout       no answer within the provider's timeout    retryable
  connection    could not reach the endpoint (refused, DNS,  retryable
                no connection within the timeout)
  auth          bad or missing key, 401/403                 not retryable
  bad_request   400/404: bad image, unknown model           not retryable
  blocked       the provider refused the content (safety)  not retryable
  malformed     an answer we could not parse or validate   retryable (bounded by the retry policy)

auth and connection say the provider cannot be used now: the worker moves the photo to the fallback at once
(`aiconsole.pipeline.routing.moves_to_fallback`); bad_request and blocked are the photo's own.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from aiconsole.platform.errors import ProviderError, ValidationFailed

MAX_LABEL_CHARS = 200
RAW_RESPONSE_LIMIT = 64 * 1024

RETRYABLE_KINDS: dict[str, bool] = {
    "rate_limited": True,
    "server_error": True,
    "timeout": True,
    "connection": True,
    "auth": False,
    "bad_request": False,
    "blocked": False,
    "malformed": True,
}


@dataclass(frozen=True)
class ImageInput:
    """What a provider sees of a photo: its bytes and what intake learned about them."""

    data: bytes
    content_type: str
    width: int
    height: int
    sha256: str


@dataclass(frozen=True)
class AnalysisRequest:
    """How to analyse: model, rendered prompt (Gemini), label cap, timeout and pricing context."""

    model: str
    prompt: str | None = None
    max_labels: int = 15
    timeout_s: float = 30.0
    month_units_before: int = 0
    price_overrides: dict[str, Any] | None = None


@dataclass(frozen=True)
class Tag:
    """One label with a confidence in 0..1; build them with `make_tags` so labels are normalised."""

    label: str
    confidence: float

    def __post_init__(self) -> None:
        if not self.label or len(self.label) > MAX_LABEL_CHARS:
            raise ValidationFailed(f"Tag label {self.label[:40]!r} is empty or longer than {MAX_LABEL_CHARS}.")
        if not (0.0 <= self.confidence <= 1.0) or math.isnan(self.confidence):
            raise ValidationFailed(f"Tag '{self.label}' has confidence {self.confidence}, outside 0..1.")


@dataclass(frozen=True)
class ProviderResult:
    """A successful analysis: tags, usage, cost, provider wall time, raw answer and step trace."""

    provider: str
    model: str
    tags: tuple[Tag, ...]
    input_tokens: int
    output_tokens: int
    units: int
    cost_micros: int
    latency_ms: int
    raw_response: Any
    trace: tuple[dict[str, Any], ...]


class Provider(Protocol):
    """Anything that can analyse an image; implementations must be safe to call from many threads.

    A provider whose client is costly to build may also offer `warm_up()`, which the worker calls before
    the first request.
    """

    name: str

    def analyze(self, image: ImageInput, request: AnalysisRequest) -> ProviderResult:
        """Tags for one image, or a ProviderError."""
        ...


@dataclass(frozen=True)
class ProviderSettings:
    """Connection settings for one provider (from provider_configs with the key decrypted)."""

    # repr=False: a logged or printed ProviderSettings must never show the key.
    api_key: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    timeout_s: float = 30.0


def normalize_label(text: str) -> str:
    """A label as stored: whitespace collapsed, stripped, lower-case, at most 200 characters."""
    return " ".join(str(text).split()).lower()[:MAX_LABEL_CHARS].strip()


def make_tags(pairs: Iterable[tuple[str, float]], *, max_labels: int) -> tuple[Tag, ...]:
    """Normalised, de-duplicated (highest confidence kept) tags, best first, at most `max_labels`."""
    best: dict[str, float] = {}
    for raw_label, raw_conf in pairs:
        label = normalize_label(raw_label)
        conf = float(raw_conf)
        if not label or math.isnan(conf):
            continue
        conf = min(1.0, max(0.0, conf))
        if conf > best.get(label, -1.0):
            best[label] = conf
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Tag(label, conf) for label, conf in ranked[: max(0, max_labels)])


def truncate_raw(value: Any, limit: int = RAW_RESPONSE_LIMIT) -> Any:
    """`value` if its JSON is at most `limit` characters, else a marker with the JSON's head."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return value
    return {"truncated": True, "json_chars": len(text), "head": text[:limit]}


def effective_timeout(settings: ProviderSettings, request: AnalysisRequest) -> float:
    """The tighter of the provider's configured timeout and the request's."""
    return max(0.001, min(settings.timeout_s, request.timeout_s))


@contextmanager
def timed(trace: list[dict[str, Any]], step: str, **details: Any) -> Iterator[dict[str, Any]]:
    """Append {"step": step, "ms": elapsed, **details} to `trace`; the yielded dict takes more details."""
    entry: dict[str, Any] = {"step": step, **details}
    start = time.perf_counter()
    try:
        yield entry
    finally:
        entry["ms"] = round((time.perf_counter() - start) * 1000, 3)
        trace.append(entry)


def provider_error(kind: str, message: str, *, hint: str | None = None) -> ProviderError:
    """A ProviderError of `kind` with the retryable flag that kind always carries."""
    return ProviderError(message, kind=kind, retryable=RETRYABLE_KINDS[kind], hint=hint)


_KEY_REASONS = {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED",
                "API_KEY_IP_ADDRESS_BLOCKED", "ACCESS_TOKEN_EXPIRED", "SERVICE_DISABLED"}


def http_error(provider: str, status: int, message: str, *, reason: str | None = None) -> ProviderError:
    """Classify an HTTP error status from a provider into a ProviderError."""
    detail = f"{provider} answered HTTP {status}: {message or 'no message'}"
    if status == 429:
        return provider_error("rate_limited", f"{detail}.",
                              hint="It is retried with backoff; lower this provider's rate limit if it persists.")
    if status in (401, 403) or (reason or "") in _KEY_REASONS:
        return provider_error("auth", f"{detail}.",
                              hint="Check the API key or credentials in the provider settings, and that the API "
                                   "is enabled for the project.")
    if status in (408, 504):
        return provider_error("timeout", f"{detail}.",
                              hint="The provider ran out of time; it is retried. Raise the timeout if it persists.")
    if status >= 500:
        return provider_error("server_error", f"{detail}.", hint="A provider-side failure; it is retried.")
    if status == 404:
        return provider_error("bad_request", f"{detail}.",
                              hint="Check the model name and the endpoint in the provider settings.")
    return provider_error("bad_request", f"{detail}.",
                          hint="The request was refused as invalid; retrying will not help. Check the image "
                               "and the model settings.")


def timeout_error(provider: str, timeout_s: float, exc: BaseException) -> ProviderError:
    """A ProviderError for a call that got no answer within `timeout_s`."""
    return provider_error("timeout", f"{provider} did not answer within {timeout_s:g} s ({type(exc).__name__}).",
                          hint="It is retried; raise this provider's timeout if it keeps happening.")


def connection_error(provider: str, endpoint: str, exc: BaseException) -> ProviderError:
    """A ProviderError for a call that could not reach the provider."""
    return provider_error("connection", f"Could not reach {provider} at {endpoint}: {type(exc).__name__}: "
                                        f"{str(exc)[:300]}",
                          hint="It is retried; check the network and the endpoint in the provider settings.")


def malformed_error(provider: str, detail: str) -> ProviderError:
    """A ProviderError for an answer that could not be parsed or validated."""
    return provider_error("malformed", f"{provider} sent an answer aiconsole could not use: {detail[:500]}",
                          hint="It is retried a bounded number of times; if it persists, check the prompt asks "
                               "for the JSON label list.")


@lru_cache(maxsize=1)
def _network_error_classes() -> tuple[tuple[type[BaseException], ...], ...]:
    """(connect timeouts, timeouts, connection errors) of the installed HTTP stacks."""
    connect_timeouts: list[type[BaseException]] = []
    timeouts: list[type[BaseException]] = [TimeoutError]
    connections: list[type[BaseException]] = [ConnectionError]
    # Whichever HTTP stacks are installed: requests (google-cloud-vision REST), httpx or its fork httpx2
    # (google-genai), google-auth's own transport error.
    for module, connect_name, timeout_name, connection_name in (
        ("requests.exceptions", "ConnectTimeout", "Timeout", "ConnectionError"),
        ("httpx", "ConnectTimeout", "TimeoutException", "TransportError"),
        ("httpx2", "ConnectTimeout", "TimeoutException", "TransportError"),
        ("google.auth.exceptions", None, None, "TransportError"),
    ):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if connect_name:
            connect_timeouts.append(getattr(mod, connect_name))
        if timeout_name:
            timeouts.append(getattr(mod, timeout_name))
        connections.append(getattr(mod, connection_name))
    return tuple(connect_timeouts), tuple(timeouts), tuple(connections)


def network_error_kind(exc: BaseException) -> str | None:
    """'timeout' or 'connection' when `exc` is a transport failure of a known HTTP stack, else None.

    No connection within the timeout is 'connection': the endpoint was never reached (a host that drops
    packets), unlike an answer that did not come in time.
    """
    connect_timeouts, timeouts, connections = _network_error_classes()
    if isinstance(exc, connect_timeouts):
        return "connection"
    if isinstance(exc, timeouts):  # checked before connections: several timeout classes are also connection errors
        return "timeout"
    if isinstance(exc, connections):
        return "connection"
    return None
