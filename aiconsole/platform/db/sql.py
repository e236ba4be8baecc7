"""Dialect-portable SQL helpers: UTC hour truncation, histogram bucket counts, percentiles, an UPDATE's row
count, a user's email by id.

Everything here produces the same answer on SQLite and PostgreSQL; tests hold both to the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Float,
    Result,
    SQLColumnExpression,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from aiconsole.platform.db.models import User
from aiconsole.platform.db.types import UTCDateTime

# SQLAlchemy's own SQLite DateTime storage format: raw SQL that writes a UTCDateTime column on SQLite
# must produce exactly this text, or string comparisons with bound datetimes go wrong at the boundary.
SQLITE_HOUR_FORMAT = "%Y-%m-%d %H:00:00.000000"


class hour_floor(FunctionElement[datetime]):
    """`hour_floor(col)`: the UTC hour a timestamp falls in, as a UTCDateTime on either dialect."""

    type = UTCDateTime()
    inherit_cache = True
    name = "hour_floor"


@compiles(hour_floor, "postgresql")
def _hour_floor_pg(element: hour_floor, compiler: SQLCompiler, **kw: Any) -> str:
    # date_trunc on a timestamptz truncates in the session TimeZone; pin it to UTC so a session
    # in Asia/Kolkata (+05:30) still gets UTC hours.
    arg = compiler.process(element.clauses, **kw)
    return f"(date_trunc('hour', ({arg}) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


@compiles(hour_floor, "sqlite")
def _hour_floor_sqlite(element: hour_floor, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"strftime('{SQLITE_HOUR_FORMAT}', {arg})"


def floor_hour(ts: datetime) -> datetime:
    """The start of the UTC hour containing the aware datetime `ts`."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(ts: datetime) -> datetime:
    """The first UTC hour boundary at or after the aware datetime `ts`."""
    floor = floor_hour(ts)
    return floor if floor == ts else floor + timedelta(hours=1)


def bucket_counts(value: SQLColumnExpression[Any], upper_bounds: Sequence[int]) -> list[ColumnElement[int]]:
    """SUM expressions counting rows per histogram bucket: value <= bound[0], ..., and above the last bound.

    The bucket rule matches the rollup table's `*_b{i}` columns:
    bucket i holds bound[i-1] < value <= bound[i].
    """
    exprs: list[ColumnElement[int]] = []
    lower: int | None = None
    for bound in upper_bounds:
        cond = value <= bound if lower is None else and_(value > lower, value <= bound)
        exprs.append(func.coalesce(func.sum(case((cond, 1), else_=0)), 0))
        lower = bound
    exprs.append(func.coalesce(func.sum(case((value > upper_bounds[-1], 1), else_=0)), 0))
    return exprs


@dataclass(frozen=True)
class HistogramPercentile:
    """A percentile read from bucket counts: the estimate and the bucket that certainly contains the truth.

    `value` interpolates linearly inside the bucket (values assumed spread evenly across it), so the error
    is at most `high - low` (the bucket's width). In the open-ended top bucket `high` is None and `value`
    is the bucket's lower bound: the truth is at least that.
    """

    value: float
    low: float
    high: float | None
    count: int

    @property
    def max_error(self) -> float | None:
        """The largest possible distance from the true percentile (None: open-ended top bucket)."""
        return None if self.high is None else self.high - self.low


def percentile_from_histogram(
    counts: Sequence[int], upper_bounds: Sequence[int], q: float
) -> HistogramPercentile | None:
    """The q-quantile (0..1) of a histogram with len(upper_bounds) + 1 buckets; None when it is empty."""
    if len(counts) != len(upper_bounds) + 1:
        raise ValueError(f"{len(counts)} counts for {len(upper_bounds)} bounds; expected bounds + 1")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    total = sum(int(c) for c in counts)
    if total <= 0:
        return None
    # Rank of the wanted observation, 1-based; the quantile lies where the cumulative count reaches it.
    rank = q * total
    cumulative = 0
    lower = 0.0
    for i, count in enumerate(counts):
        count = int(count)
        upper = float(upper_bounds[i]) if i < len(upper_bounds) else None
        if count > 0 and cumulative + count >= rank:
            if upper is None:
                return HistogramPercentile(value=lower, low=lower, high=None, count=total)
            fraction = (rank - cumulative) / count
            return HistogramPercentile(value=lower + fraction * (upper - lower), low=lower, high=upper,
                                       count=total)
        cumulative += count
        if upper is not None:
            lower = upper
    raise AssertionError("unreachable: the cumulative count always reaches the rank")


def _interpolate(sorted_pair: Sequence[float], n: int, q: float) -> float:
    # PostgreSQL percentile_cont: position (n - 1) * q, linear between its two neighbours.
    position = (n - 1) * q
    k = int(position)
    low = sorted_pair[0]
    if len(sorted_pair) == 1 or position == k:
        return float(low)
    return float(low) + (float(sorted_pair[1]) - float(low)) * (position - k)


def grouped_percentiles(
    session: Session,
    *,
    value: SQLColumnExpression[Any],
    group: SQLColumnExpression[Any],
    where: Sequence[ColumnElement[bool]],
    quantiles: Sequence[float],
    method: Literal["auto", "native", "portable"] = "auto",
) -> dict[Any, tuple[float, ...]]:
    """Continuous percentiles (PostgreSQL percentile_cont semantics) of `value` per `group`.

    "native" uses percentile_cont (PostgreSQL only); "portable" ranks rows with window functions and
    fetches just the two neighbours of each wanted position, on any dialect; "auto" picks native on
    PostgreSQL. Both give identical figures. Groups with no rows are absent from the answer.
    """
    dialect = session.get_bind().dialect.name
    if method == "native" or (method == "auto" and dialect == "postgresql"):
        if dialect != "postgresql":
            raise ValueError("percentile_cont is PostgreSQL only; use method='portable'")
        cols = [func.percentile_cont(q).within_group(value) for q in quantiles]
        rows = session.execute(select(group, *cols).where(*where).group_by(group)).all()
        return {row[0]: tuple(float(v) for v in row[1:]) for row in rows}

    ranked = (
        select(
            group.label("g"),
            value.label("v"),
            (func.row_number().over(partition_by=group, order_by=value) - 1).label("rn"),
            func.count().over(partition_by=group).label("n"),
        )
        .where(*where)
        .subquery()
    )
    rn, n = ranked.c.rn, ranked.c.n
    # Rows k = floor((n-1)q) and k+1 lie within (n-1)q +- 1; the margin of 2 keeps them even if the
    # database rounds the float product differently from Python. q is bound as a double on purpose:
    # PostgreSQL would otherwise do exact numeric arithmetic and disagree with percentile_cont's float8.
    wanted = []
    for q in quantiles:
        position = (n - 1) * literal(float(q), Float)
        wanted.append(and_(rn > position - 2, rn < position + 2))
    rows = session.execute(
        select(ranked.c.g, rn.cast(BigInteger), n.cast(BigInteger), ranked.c.v)
        .where(or_(*wanted))
        .order_by(ranked.c.g, rn)
    ).all()
    by_group: dict[Any, tuple[int, dict[int, float]]] = {}
    for g, r, count, v in rows:
        by_group.setdefault(g, (int(count), {}))[1][int(r)] = float(v)
    answer: dict[Any, tuple[float, ...]] = {}
    for g, (count, values) in by_group.items():
        out = []
        for q in quantiles:
            k = int((count - 1) * q)
            pair = [values[k]] + ([values[k + 1]] if k + 1 in values else [])
            out.append(_interpolate(pair, count, q))
        answer[g] = tuple(out)
    return answer


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE touched (0 when the driver does not say)."""
    # UPDATE results are CursorResults at run time; the generic Result type does not declare rowcount.
    return int(cast(CursorResult[Any], result).rowcount or 0)


def user_email(session: Session, user_id: int | None) -> str | None:
    """The email of user `user_id` (None for no user or a deleted one)."""
    return None if user_id is None else session.scalar(select(User.email).where(User.id == user_id))
