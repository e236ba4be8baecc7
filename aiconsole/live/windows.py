"""Live Status time windows: the organization's clock and exact per-provider totals over named windows.

"Today" and "this month" are calendar periods in the organization's time zone; "yesterday" and "the
last hour yesterday" end at the same wall-clock time yesterday.

History (today, yesterday, this month, the last hour) comes from `processing_rollups_hourly`; an hourly
rollup row covers a whole UTC hour, so the pieces of a window that only partly cover an hour (the
current hour, a day that starts at :30 in Asia/Kolkata, "same time yesterday") are read from
`ai_processing_results` directly, through its (organization_id, created_at, ai_provider) index. Every
window is therefore exact to the second while never reading more than about two hours of results.

"Processed" means a result with tags: status completed or needs_review. Failed results are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Integer, SQLColumnExpression, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import AiProcessingResult, Organization, ProcessingRollupHourly
from aiconsole.platform.db.sql import ceil_hour, floor_hour
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConfigError, NotFound

_R = ProcessingRollupHourly
_A = AiProcessingResult

Window = tuple[datetime, datetime]


# ---------------------------------------------------------------------------------------------- clock


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


# --------------------------------------------------------------------------------------------- totals


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return None if whole == 0 else part / whole


@dataclass
class Totals:
    """Result counts, cost and confidence sums over a window (for one provider or all of them)."""

    results: int = 0
    completed: int = 0
    needs_review: int = 0
    failed: int = 0
    cost_micros: int = 0
    confidence_sum: float = 0.0
    confidence_count: int = 0

    @property
    def processed(self) -> int:
        """Results with tags: completed + needs_review."""
        return self.completed + self.needs_review

    @property
    def avg_confidence(self) -> float | None:
        """The mean confidence of the results that have one (None without any)."""
        return None if self.confidence_count == 0 else self.confidence_sum / self.confidence_count

    @property
    def error_rate(self) -> float | None:
        """Failed results as a fraction of all results (None without results)."""
        return rate(self.failed, self.results)

    def add(self, other: Totals) -> None:
        """Add `other` into these totals."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def sum_totals(per_provider: Mapping[str, Totals]) -> Totals:
    """The totals of all providers together."""
    total = Totals()
    for t in per_provider.values():
        total.add(t)
    return total


_FIELDS = tuple(Totals.__dataclass_fields__)

# The same figures from a rollup row and from raw results; rollups.rebuild_rollups must agree.
_ROLLUP_COLUMNS: dict[str, SQLColumnExpression[Any]] = {
    "results": _R.results_count,
    "completed": _R.completed_count,
    "needs_review": _R.needs_review_count,
    "failed": _R.failed_count,
    "cost_micros": _R.cost_micros,
    "confidence_sum": _R.confidence_sum,
    "confidence_count": _R.confidence_count,
}
_RESULT_EXPRS: dict[str, SQLColumnExpression[Any]] = {
    "results": literal(1, Integer),
    "completed": case((_A.status == "completed", 1), else_=0),
    "needs_review": case((_A.status == "needs_review", 1), else_=0),
    "failed": case((_A.status == "failed", 1), else_=0),
    "cost_micros": _A.api_cost_micros,
    "confidence_sum": func.coalesce(_A.avg_confidence, 0.0),
    "confidence_count": case((_A.avg_confidence.is_not(None), 1), else_=0),
}


def _split(window: Window) -> tuple[Window | None, list[Window]]:
    """A window as whole UTC hours (for the rollups) plus the partial-hour pieces (for raw results)."""
    start, end = window
    if end <= start:
        return None, []
    whole_start, whole_end = ceil_hour(start), floor_hour(end)
    if whole_start >= whole_end:  # no whole hour inside: read it all from results
        return None, [(start, end)]
    pieces = [p for p in ((start, whole_start), (whole_end, end)) if p[0] < p[1]]
    return (whole_start, whole_end), pieces


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return 0.0 if name == "confidence_sum" else 0
    return float(value) if name == "confidence_sum" else int(value)


def _parts(ranges: Iterable[Window]) -> list[datetime]:
    """The sorted boundaries that cut `ranges` into elementary intervals [b[j], b[j+1])."""
    return sorted({t for r in ranges for t in r})


def _part_index(column: Any, bounds: list[datetime]) -> Any:
    # Elementary interval number j of a timestamp in [bounds[0], bounds[-1]).
    if len(bounds) == 2:
        return literal(0, Integer)
    return case(*[(column < bounds[j + 1], j) for j in range(len(bounds) - 2)], else_=len(bounds) - 2)


def _assign(ranges: Mapping[str, list[Window]], bounds: list[datetime],
            part_totals: Mapping[tuple[str, int], Totals], out: dict[str, dict[str, Totals]]) -> None:
    """Add each elementary interval's totals to every window whose ranges cover it."""
    for name, windows in ranges.items():
        for start, end in windows:
            first, last = bounds.index(start), bounds.index(end)
            for (provider, j), totals in part_totals.items():
                if first <= j < last:
                    out[name].setdefault(provider, Totals()).add(totals)


def _part_totals(rows: Iterable[Any]) -> dict[tuple[str, int], Totals]:
    return {(row[0], int(row[1])): Totals(*[_coerce(f, v) for f, v in zip(_FIELDS, row[2:], strict=True)])
            for row in rows}


def window_totals(session: Session, *, organization_id: int,
                  windows: Mapping[str, Window]) -> dict[str, dict[str, Totals]]:
    """Per window name and provider, the totals over [start, end).

    Whole hours come from the rollups, the partial hours from results, one query each: the windows'
    boundaries cut time into elementary intervals, SQL sums per (provider, interval) and each window
    adds up the intervals it covers. Only the partial-hour ranges of results are read (OR of ranges,
    each an index range scan), never the stretches between them.
    """
    out: dict[str, dict[str, Totals]] = {name: {} for name in windows}
    whole: dict[str, list[Window]] = {}
    pieces: dict[str, list[Window]] = {}
    for name, window in windows.items():
        hours, partial = _split(window)
        whole[name] = [hours] if hours is not None else []
        pieces[name] = partial

    hour_ranges = [r for rs in whole.values() for r in rs]
    if hour_ranges:
        bounds = _parts(hour_ranges)
        part = _part_index(_R.hour, bounds).label("part")
        rows = session.execute(
            select(_R.ai_provider, part, *[func.sum(_ROLLUP_COLUMNS[f]) for f in _FIELDS])
            .where(_R.organization_id == organization_id, _R.hour >= bounds[0], _R.hour < bounds[-1])
            .group_by(_R.ai_provider, part)
        ).all()
        _assign(whole, bounds, _part_totals(rows), out)

    result_ranges = list(dict.fromkeys(r for rs in pieces.values() for r in rs))
    if result_ranges:
        bounds = _parts(result_ranges)
        part = _part_index(_A.created_at, bounds).label("part")
        in_ranges = or_(*[and_(_A.organization_id == organization_id, _A.created_at >= start,
                               _A.created_at < end) for start, end in result_ranges])
        rows = session.execute(
            select(_A.ai_provider, part, *[func.sum(_RESULT_EXPRS[f]) for f in _FIELDS])
            .where(in_ranges)
            .group_by(_A.ai_provider, part)
        ).all()
        _assign(pieces, bounds, _part_totals(rows), out)
    return out
