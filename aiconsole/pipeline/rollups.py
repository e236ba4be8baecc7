"""Hourly rollups of processing results: rebuilt from the results table, and read as exact window totals.

The worker keeps `processing_rollups_hourly` current as it writes results; `rebuild_rollups` rebuilds it
from scratch (the demo seed, the benchmark, repairs after a bulk import) in one set-based statement.

`window_totals` reads per-provider totals over named windows (`aiconsole.platform.clock`), for the budget
guard and Live Status alike. An hourly rollup row covers a whole UTC hour, so the pieces of a window that
only partly cover an hour (the current hour, a day that starts at :30 in Asia/Kolkata, "same time
yesterday") are read from `ai_processing_results` directly, through its (organization_id, created_at,
ai_provider) index. Every window is therefore exact to the second while never reading more than about two
hours of results. "Processed" means a result with tags: status completed or needs_review; failed results
are counted apart. Every figure is an aggregate in SQL: no result row is read into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    SQLColumnExpression,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from aiconsole.platform.clock import Window
from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    ProcessingRollupHourly,
)
from aiconsole.platform.db.sql import bucket_counts, ceil_hour, floor_hour, hour_floor
from aiconsole.platform.errors import ValidationFailed

_R = ProcessingRollupHourly
_A = AiProcessingResult


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sum(column: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), 0)


def rollup_select(*, organization_id: int, since: datetime | None = None) -> tuple[list[str], Any]:
    """The rollup table's column names and the GROUP BY select that computes them from the results."""
    r = AiProcessingResult
    hour = hour_floor(r.created_at)
    columns: dict[str, Any] = {
        "organization_id": r.organization_id,
        "hour": hour,
        "ai_provider": r.ai_provider,
        "results_count": func.count(),
        "completed_count": _count_if(r.status == "completed"),
        "needs_review_count": _count_if(r.status == "needs_review"),
        "failed_count": _count_if(r.status == "failed"),
        "retry_count_sum": _sum(r.retry_count),
        "tag_count": _sum(r.tag_count),
        "cost_micros": _sum(r.api_cost_micros),
        "input_tokens": _sum(r.input_tokens),
        "output_tokens": _sum(r.output_tokens),
        "units": _sum(r.units),
        "confidence_sum": func.coalesce(func.sum(r.avg_confidence), 0.0),
        "confidence_count": func.count(r.avg_confidence),
        "latency_ms_sum": _sum(r.provider_response_time_ms),
        "queue_wait_ms_sum": _sum(r.queue_wait_time_ms),
    }
    for i, expr in enumerate(bucket_counts(r.provider_response_time_ms, LATENCY_BUCKETS_MS)):
        columns[f"latency_b{i}"] = expr
    for i, expr in enumerate(bucket_counts(r.queue_wait_time_ms, WAIT_BUCKETS_MS)):
        columns[f"wait_b{i}"] = expr
    query = select(*(expr.label(name) for name, expr in columns.items())).where(
        r.organization_id == organization_id)
    if since is not None:
        query = query.where(r.created_at >= floor_hour(since))
    return list(columns), query.group_by(r.organization_id, hour, r.ai_provider)


def rebuild_rollups(session: Session, *, organization_id: int, since: datetime | None = None) -> int:
    """Recompute the org's hourly rollups (all, or from the hour of `since` on); returns the rows written.

    Runs in the caller's transaction. Rows of the hours being rebuilt are replaced, older hours are kept.
    A worker writing results for the same hours at the same moment would race the rebuild, so run it
    on quiet data (a seed, a benchmark, a repair with the org paused).
    """
    if since is not None and since.tzinfo is None:
        raise ValidationFailed("`since` must be a timezone-aware datetime.",
                               hint="Pass datetime.now(UTC) - timedelta(...), not a naive datetime.")
    stale = delete(ProcessingRollupHourly).where(ProcessingRollupHourly.organization_id == organization_id)
    if since is not None:
        stale = stale.where(ProcessingRollupHourly.hour >= floor_hour(since))
    session.execute(stale)
    names, query = rollup_select(organization_id=organization_id, since=since)
    session.execute(insert(ProcessingRollupHourly).from_select(names, query))
    # Drivers do not all report a rowcount for INSERT ... SELECT (psycopg may say -1): count instead.
    written = select(func.count()).select_from(ProcessingRollupHourly).where(
        ProcessingRollupHourly.organization_id == organization_id)
    if since is not None:
        written = written.where(ProcessingRollupHourly.hour >= floor_hour(since))
    return int(session.scalar(written) or 0)


# ------------------------------------------------------------------------------ exact totals over windows


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
