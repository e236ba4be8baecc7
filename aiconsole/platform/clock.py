"""The organization's clock: one moment (UTC) and its calendar boundaries in the organization's time zone.

"Today" and "this month" are calendar periods in the organization's time zone; "yesterday" and "the last
hour yesterday" end at the same wall-clock time yesterday (so a DST change day still compares 14:00 with
14:00). The budget guard and Live Status read their windows from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import Organization
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConfigError, NotFound

Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class Clock:
    """One refresh's `now` (UTC) and the organization-local boundaries of its windows, in UTC."""

    now: datetime
    tz: ZoneInfo
    day_start: datetime
    yesterday_start: datetime
    yesterday_same_time: datetime
    month_start: datetime
    next_month_start: datetime


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def org_clock(session: Session, *, organization_id: int, now: datetime | None) -> Clock:
    """The clock at `now` (default: the current time) in the organization's time zone."""
    if now is None:
        now = utcnow()
    elif now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (e.g. datetime.now(UTC))")
    now = now.astimezone(UTC)
    tz_name = session.execute(
        select(Organization.timezone).where(Organization.id == organization_id)
    ).scalar_one_or_none()
    if tz_name is None:
        raise NotFound(f"Organization {organization_id} does not exist or is not visible to you.",
                       hint="Pick an organization from the sidebar or check the id.")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"Organization {organization_id} has an unknown time zone {tz_name!r}.",
            hint="Set an IANA zone name such as 'Europe/Berlin' in the organization settings.",
        ) from err
    local = now.astimezone(tz)
    today = local.date()
    yesterday = today - timedelta(days=1)
    first = today.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    # Wall-clock "same time yesterday", so a DST change day still compares 14:00 with 14:00.
    same_time = datetime.combine(yesterday, local.time().replace(tzinfo=None), tzinfo=tz).astimezone(UTC)
    return Clock(
        now=now, tz=tz,
        day_start=_local_midnight(today, tz),
        yesterday_start=_local_midnight(yesterday, tz),
        yesterday_same_time=min(same_time, _local_midnight(today, tz)),
        month_start=_local_midnight(first, tz),
        next_month_start=_local_midnight(next_first, tz),
    )


def named_windows(clock: Clock, names: Iterable[str]) -> dict[str, Window]:
    """The windows `names` (today, yesterday, month, last_hour, last_hour_yesterday) as [start, end)."""
    every = {
        "today": (clock.day_start, clock.now),
        "yesterday": (clock.yesterday_start, clock.yesterday_same_time),
        "month": (clock.month_start, clock.now),
        "last_hour": (clock.now - timedelta(hours=1), clock.now),
        "last_hour_yesterday": (clock.yesterday_same_time - timedelta(hours=1), clock.yesterday_same_time),
    }
    return {name: every[name] for name in names}
