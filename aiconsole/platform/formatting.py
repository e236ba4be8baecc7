"""Numbers as people read them: counts, plurals, durations, percentages, money, moments, stored values.

Nothing here prints None, nan, E-notation, microseconds or a raw UTC offset: a missing value is "—" (or
"never" for a moment that has not happened), counts carry thousands separators, and moments are shown to the
second in the organization's time zone with its abbreviation.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from aiconsole.platform.money import MICROS_PER_USD, format_usd

MISSING = "—"


def count(value: float | None) -> str:
    """A count with thousands separators: 41957 -> '41,957'; '—' for unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{round(value):,}"


def plural(n: float | None, noun: str, nouns: str | None = None) -> str:
    """'1 worker', '2 workers', '41,957 photos' ('entry'/'entries': pass the plural); '— workers' unknown."""
    many = nouns or f"{noun}s"
    if n is None:
        return f"{MISSING} {many}"
    return f"{count(n)} {noun if n == 1 else many}"


def number(value: float | Decimal | str | None, places: int | None = None) -> str:
    """A plain number with separators and never E-notation: 6E+2 -> '600', 1.2e-05 -> '0.000012'.

    `places` fixes the decimals; without it trailing zeros go (at most 6 decimals). '—' for unknown.
    """
    exact = _decimal(value)
    if exact is None:
        return MISSING
    if places is not None:
        return f"{exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,f}"
    text = f"{exact.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def dollars(value: float | Decimal | str | None, places: int = 2) -> str:
    """A dollar amount held as Decimal/float/str: Decimal('6E+2') -> '$600.00', -5 -> '-$5.00'; '—' unknown."""
    exact = _decimal(value)
    if exact is None:
        return MISSING
    text = f"${abs(exact).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,f}"
    return f"-{text}" if exact < 0 else text


def _decimal(value: float | Decimal | str | None) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        exact = Decimal(str(value).replace(",", "")) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return None
    return exact if exact.is_finite() else None


def duration(value: timedelta | float | None) -> str:
    """'45 s', '12 min', '3 h 20 min', '2 d 4 h'; '—' for unknown. Floats are seconds."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours, rest = divmod(int(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ms(value: float | None) -> str:
    """Milliseconds: '850 ms', '2.4 s', '3 min'; '—' for unknown."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    return duration(value / 1000)


def pct(value: float | None, places: int = 1) -> str:
    """A fraction as a percentage: 0.1234 -> '12.3%'; '—' for unknown."""
    return "—" if value is None else f"{value * 100:.{places}f}%"


def usd(micros: int | None, places: int = 2) -> str:
    """Micro-dollars as '$1,234.57'; '—' for unknown."""
    return "—" if micros is None else format_usd(micros, places=places)


def usd_small(micros: int | None) -> str:
    """Micro-dollars short enough for a metric: cents from $0.01 up ('$1,234.57'), two significant digits
    below ('$0.00067', '$0.000001'), '$0.00' for nothing; '—' for unknown."""
    if micros is None:
        return MISSING
    if micros == 0 or abs(micros) >= MICROS_PER_USD // 100:
        return format_usd(micros)
    amount = Decimal(micros) / MICROS_PER_USD
    text = dollars(amount, places=min(6, 1 - amount.adjusted()))
    return text.rstrip("0") if len(text.rsplit(".", 1)[1]) > 2 else text


def usd_delta(micros: int | None) -> str | None:
    """A signed money delta for st.metric ('+$1.20', '-$0.35'), or None when unknown."""
    if micros is None:
        return None
    return ("+" if micros >= 0 else "-") + format_usd(abs(micros))


def ago(moment: datetime | None, now: datetime) -> str:
    """'12 s ago', '5 min ago'; 'never' when unknown."""
    if moment is None:
        return "never"
    return f"{duration(now - moment)} ago"


def when(moment: datetime | None, tz: str | None = None, *, seconds: bool = True,
         missing: str = MISSING) -> str:
    """'2026-12-02 13:44:31 EST': a moment in time zone `tz` (default UTC), to the second (or minute), no
    microseconds or offset; `missing` ('—', or e.g. 'never') when unknown. A naive moment is taken as UTC."""
    if moment is None:
        return missing
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz) if tz else UTC).strftime(
        "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def zone(tz: str | None, moment: datetime | None = None) -> str:
    """The abbreviation of time zone `tz` at `moment` (default now): 'EST', 'CEST', 'UTC'."""
    at = moment or datetime.now(UTC)
    return at.astimezone(ZoneInfo(tz) if tz else UTC).strftime("%Z")


_ISO_MOMENT = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)?")
_E_NUMBER = re.compile(r"-?\d+(\.\d+)?[eE][+-]?\d+")  # str(Decimal('600').normalize()) is '6E+2'


def stored(value: Any, tz: str | None = None) -> str:
    """A value from a stored state (an audit before/after, a config) as text: '—' for missing, counts with
    separators, numbers without E-notation, ISO moments via `when` in `tz`, lists and objects as JSON."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return count(value)
    if isinstance(value, float | Decimal):
        return number(value)
    if isinstance(value, datetime):
        return when(value, tz)
    if isinstance(value, str):
        if _E_NUMBER.fullmatch(value.strip()):
            return number(value.strip())
        if _ISO_MOMENT.fullmatch(value.strip()):
            try:
                return when(datetime.fromisoformat(value.strip().replace("Z", "+00:00")), tz)
            except ValueError:
                return value
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def clock_time(moment: datetime | None, now: datetime, tz: str | None = None) -> str:
    """'14:03:20 CEST (in 2 min)': a moment to the second in time zone `tz` (default UTC), with the date
    when it is not today, and how far from `now` it is; '—' when unknown."""
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(tz) if tz else UTC)
    same_day = local.date() == now.astimezone(local.tzinfo).date()
    text = local.strftime("%H:%M:%S %Z" if same_day else "%Y-%m-%d %H:%M:%S %Z")
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return f"{text} (now)"
    return f"{text} (in {duration(seconds)})" if seconds > 0 else f"{text} ({duration(-seconds)} ago)"


def signed(value: float | None, fmt: str = "{:+,.0f}") -> str | None:
    """A delta for st.metric ('+12'), or None when unknown so no arrow is drawn."""
    return None if value is None else fmt.format(value)
