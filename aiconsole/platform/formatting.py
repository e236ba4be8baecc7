"""Numbers as people read them: durations, percentages, milliseconds, money, relative times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiconsole.platform.money import format_usd


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
