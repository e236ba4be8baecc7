"""Hourly rollups of processing results, recomputed from the results table in one set-based statement.

The worker keeps `processing_rollups_hourly` current as it writes results; this module rebuilds it from
scratch (the demo seed, the benchmark, repairs after a bulk import). Every figure is an aggregate in SQL:
no result row is read into Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, insert, select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    ProcessingRollupHourly,
)
from aiconsole.platform.db.sql import bucket_counts, floor_hour, hour_floor
from aiconsole.platform.errors import ValidationFailed


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
