"""Provider data types, label normalisation, error classification and known-answer costs."""

from __future__ import annotations

import pytest
import requests

from aiconsole.platform.errors import ProviderError, ValidationFailed
from aiconsole.providers import pricing
from aiconsole.providers.base import (
    RETRYABLE_KINDS,
    AnalysisRequest,
    ProviderSettings,
    Tag,
    effective_timeout,
    http_error,
    make_tags,
    network_error_kind,
    normalize_label,
    truncate_raw,
)
from aiconsole.providers.google_vision import GoogleVisionProvider


def test_labels_are_normalised() -> None:
    assert normalize_label("  Golden   Retriever\n") == "golden retriever"
    assert len(normalize_label("x" * 500)) == 200


def test_make_tags_dedupes_keeps_best_sorts_and_caps() -> None:
    tags = make_tags([("Cat", 0.4), ("cat ", 0.9), ("Dog", 0.7), ("", 0.99), ("sky", 1.7), ("sea", -1),
                      ("nan", float("nan"))], max_labels=3)
    assert tags == (Tag("sky", 1.0), Tag("cat", 0.9), Tag("dog", 0.7))


def test_tag_refuses_bad_values() -> None:
    with pytest.raises(ValidationFailed):
        Tag("cat", 1.5)
    with pytest.raises(ValidationFailed):
        Tag("", 0.5)


def test_truncate_raw_keeps_small_and_marks_large() -> None:
    assert truncate_raw({"a": 1}) == {"a": 1}
    big = truncate_raw({"blob": "x" * 100_000})
    assert big["truncated"] is True and big["json_chars"] > 100_000 and len(big["head"]) == 64 * 1024


@pytest.mark.parametrize(("status", "reason", "kind", "retryable"), [
    (429, None, "rate_limited", True),
    (500, None, "server_error", True),
    (502, None, "server_error", True),
    (503, None, "server_error", True),
    (504, None, "timeout", True),
    (401, None, "auth", False),
    (403, None, "auth", False),
    (400, "API_KEY_INVALID", "auth", False),
    (400, None, "bad_request", False),
    (404, None, "bad_request", False),
])
def test_http_status_classification(status: int, reason: str | None, kind: str, retryable: bool) -> None:
    err = http_error("gemini", status, "boom", reason=reason)
    assert isinstance(err, ProviderError)
    assert (err.kind, err.retryable) == (kind, retryable)
    assert f"HTTP {status}" in str(err) and err.hint


def test_every_kind_has_a_fixed_retry_flag() -> None:
    assert {k for k, v in RETRYABLE_KINDS.items() if v} == {"rate_limited", "server_error", "timeout",
                                                            "connection", "malformed"}


def test_network_errors_of_real_stacks_are_classified() -> None:
    import httpx2

    assert network_error_kind(requests.exceptions.ReadTimeout()) == "timeout"
    # No connection within the timeout: the endpoint was never reached (the photo moves to the fallback).
    assert network_error_kind(requests.exceptions.ConnectTimeout()) == "connection"
    assert network_error_kind(httpx2.ConnectTimeout("no answer to SYN")) == "connection"
    assert network_error_kind(requests.exceptions.ConnectionError()) == "connection"
    assert network_error_kind(httpx2.ReadTimeout("slow")) == "timeout"
    assert network_error_kind(httpx2.ConnectError("refused")) == "connection"
    assert network_error_kind(httpx2.RemoteProtocolError("server disconnected")) == "connection"
    assert network_error_kind(TimeoutError()) == "timeout"
    assert network_error_kind(ConnectionRefusedError()) == "connection"
    assert network_error_kind(KeyError("x")) is None


def test_effective_timeout_is_the_tighter_one() -> None:
    assert effective_timeout(ProviderSettings(timeout_s=5), AnalysisRequest(model="m", timeout_s=30)) == 5
    assert effective_timeout(ProviderSettings(timeout_s=30), AnalysisRequest(model="m", timeout_s=2.5)) == 2.5


# Known answers for the price tables every provider cost comes from.

def test_vision_cost_known_answers() -> None:
    one = GoogleVisionProvider(ProviderSettings())
    assert one.cost_micros(units_per_feature=1, month_units_before=0) == 0  # inside the free 1,000
    assert one.cost_micros(units_per_feature=1, month_units_before=999) == 0  # the 1,000th unit is free
    assert one.cost_micros(units_per_feature=1, month_units_before=1000) == 1500  # $1.50 / 1,000
    assert one.cost_micros(units_per_feature=1, month_units_before=5_000_000) == 1000  # next tier $1.00
    assert one.cost_micros(units_per_feature=1, month_units_before=2000,
                           overrides={"LABEL_DETECTION": {"per_1000": "0.80"}}) == 800
    both = GoogleVisionProvider(ProviderSettings(), object_localization=True)
    # 4,000 units this month over two features = 2,000 each: past both free tiers.
    assert both.cost_micros(units_per_feature=1, month_units_before=4000) == 1500 + 2250
    assert both.cost_micros(units_per_feature=1, month_units_before=1000) == 0  # 500 each: both free


def test_gemini_cost_known_answers() -> None:
    # gemini-2.5-flash: $0.30 per 1M input, $2.50 per 1M output tokens.
    assert pricing.gemini_cost_micros("gemini-2.5-flash", input_tokens=1000, output_tokens=200) == 300 + 500
    assert pricing.gemini_cost_micros("gemini-2.5-pro", input_tokens=258, output_tokens=100) == 1323  # 322.5+1000
    assert pricing.gemini_cost_micros("gemini-2.5-flash", input_tokens=1_000_000, output_tokens=0,
                                      overrides={"gemini-2.5-flash": {"input_per_m": "0.25"}}) == 250_000


def test_provider_settings_never_show_the_key() -> None:
    from aiconsole.providers.base import ProviderSettings

    key = "AIza" + "x" * 35
    settings = ProviderSettings(api_key=key, endpoint="http://127.0.0.1:1")
    assert key not in repr(settings) and key not in str(settings)
