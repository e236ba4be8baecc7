"""Known answers for the formatting layer: what a person reads for each kind of number, moment and value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aiconsole.platform import formatting as fmt

NOW = datetime(2026, 12, 2, 18, 44, 31, 85040, tzinfo=UTC)


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (7, "7"), (999, "999"), (3173, "3,173"), (41957, "41,957"), (1_234_567, "1,234,567"),
    (-4200, "-4,200"), (12.6, "13"), (None, "—"), (float("nan"), "—"), (float("inf"), "—"),
])
def test_count(value: float | None, text: str) -> None:
    assert fmt.count(value) == text


@pytest.mark.parametrize(("n", "noun", "nouns", "text"), [
    (1, "worker", None, "1 worker"), (2, "worker", None, "2 workers"), (0, "photo", None, "0 photos"),
    (41957, "photo", None, "41,957 photos"), (1, "entry", "entries", "1 entry"),
    (3, "entry", "entries", "3 entries"), (1.0, "day", None, "1 day"), (None, "worker", None, "— workers"),
])
def test_plural(n: float | None, noun: str, nouns: str | None, text: str) -> None:
    assert fmt.plural(n, noun, nouns) == text


@pytest.mark.parametrize(("value", "places", "text"), [
    (Decimal("6E+2"), None, "600"), (1.2e-05, None, "0.000012"), (12345.5, None, "12,345.5"),
    (0.92, None, "0.92"), (3, 2, "3.00"), ("1E+7", None, "10,000,000"), (Decimal("0.1000"), None, "0.1"),
    (2.5e-9, None, "0"), (None, None, "—"), (float("nan"), None, "—"), ("not a number", None, "—"),
])
def test_number_never_prints_e_notation(value: object, places: int | None, text: str) -> None:
    assert fmt.number(value, places) == text  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("6E+2"), "$600.00"), (Decimal("600"), "$600.00"), (25, "$25.00"), ("1234.567", "$1,234.57"),
    (-5, "-$5.00"), (0.1 + 0.2, "$0.30"), (None, "—"),
])
def test_dollars(value: object, text: str) -> None:
    assert fmt.dollars(value) == text  # type: ignore[arg-type]


@pytest.mark.parametrize(("micros", "text"), [
    (1_234_567_890, "$1,234.57"), (630_000, "$0.63"), (10_000, "$0.01"), (9_999, "$0.01"), (1_500, "$0.0015"),
    (672, "$0.00067"), (67, "$0.000067"), (1, "$0.000001"), (0, "$0.00"), (-672, "-$0.00067"), (None, "—"),
])
def test_usd_small_keeps_what_matters_in_few_characters(micros: int | None, text: str) -> None:
    assert fmt.usd_small(micros) == text
    if micros is not None and abs(micros) < 10_000:
        assert len(text) <= 9  # fits a metric in a quarter of a column


def test_usd_and_its_delta() -> None:
    assert fmt.usd(600_000_000) == "$600.00"
    assert fmt.usd(1_234_567_890) == "$1,234.57"
    assert fmt.usd(672, places=5) == "$0.00067"
    assert fmt.usd(None) == "—"
    assert fmt.usd_delta(1_200_000) == "+$1.20" and fmt.usd_delta(-350_000) == "-$0.35"
    assert fmt.usd_delta(None) is None


@pytest.mark.parametrize(("tz", "seconds", "text"), [
    (None, True, "2026-12-02 18:44:31 UTC"),
    ("America/New_York", True, "2026-12-02 13:44:31 EST"),
    ("Europe/Berlin", False, "2026-12-02 19:44 CET"),
])
def test_when_is_in_the_zone_without_microseconds_or_offset(tz: str | None, seconds: bool, text: str) -> None:
    assert fmt.when(NOW, tz, seconds=seconds) == text


def test_when_missing_and_naive() -> None:
    assert fmt.when(None) == "—"
    assert fmt.when(None, missing="never") == "never"
    assert fmt.when(datetime(2026, 7, 1, 12, 0), "Europe/Berlin") == "2026-07-01 14:00:00 CEST"  # naive = UTC
    assert fmt.zone("America/New_York", NOW) == "EST" and fmt.zone(None, NOW) == "UTC"
    assert fmt.zone("America/New_York", datetime(2026, 7, 1, tzinfo=UTC)) == "EDT"


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (True, "true"), (False, "false"), (25_000_000, "25,000,000"), (3, "3"), (0.85, "0.85"),
    ("6E+2", "600"), ("2026-12-02T18:44:30.085040+00:00", "2026-12-02 13:44:30 EST"),
    ("2026-12-02T18:44:30Z", "2026-12-02 13:44:30 EST"), ("viewer", "viewer"), ("2026-12-02", "2026-12-02"),
    (["cat", "dog"], '["cat", "dog"]'), ({"tag": "café"}, '{"tag": "café"}'), (NOW, "2026-12-02 13:44:31 EST"),
])
def test_stored_values_read_as_text(value: object, text: str) -> None:
    assert fmt.stored(value, "America/New_York") == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (0, "0 s"), (45, "45 s"), (timedelta(minutes=12), "12 min"), (3 * 3600 + 20 * 60, "3 h 20 min"),
    (7200, "2 h"), (timedelta(days=2, hours=4), "2 d 4 h"), (timedelta(days=3), "3 d"), (-5, "0 s"),
])
def test_duration(value: timedelta | float | None, text: str) -> None:
    assert fmt.duration(value) == text


@pytest.mark.parametrize(("value", "text"), [(None, "—"), (850, "850 ms"), (2400, "2.4 s"), (180_000, "3 min")])
def test_ms(value: float | None, text: str) -> None:
    assert fmt.ms(value) == text


def test_pct_ago_clock_time_and_signed() -> None:
    assert fmt.pct(0.1234) == "12.3%" and fmt.pct(None) == "—" and fmt.pct(1, places=0) == "100%"
    assert fmt.ago(NOW - timedelta(seconds=12), NOW) == "12 s ago" and fmt.ago(None, NOW) == "never"
    assert fmt.clock_time(NOW + timedelta(minutes=2), NOW, "America/New_York") == "13:46:31 EST (in 2 min)"
    assert fmt.clock_time(None, NOW) == "—"
    assert fmt.signed(12) == "+12" and fmt.signed(41957) == "+41,957" and fmt.signed(None) is None
