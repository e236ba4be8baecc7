"""Counts of an organization's AI tags over a window, from what the database keeps on every write of a tag
(migration 0017): quality_tag_daily, the AI tags per UTC day, AI label and confidence bin, and quality_ai_tags,
each AI tag with the label the AI gave it (a rename leaves it as it was), instead of a pass over every tag.

A window is split (`split`) into whole UTC days, read from the rollup, and the partial days at either end,
which the caller reads from AI_TAGS (through its (organization_id, created_at) index). A rollup bin k holds
the tags with k/100 <= confidence < (k+1)/100 by `review_sql.bin_sql`'s comparisons, so 'confidence >= k/100'
is exactly 'bin >= k'; a threshold off that grid is counted exactly by reading its one bin's tags (through
the (organization_id, ai_label, confidence) index).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, false, func, or_, select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import QualityAiTag, QualityTagDaily

ROLLUP = cast(Table, QualityTagDaily.__table__)
AI_TAGS = cast(Table, QualityAiTag.__table__)
GRID = 100  # the rollup's bins (migration 0017)


def grid_bin(threshold: float) -> int:
    """The rollup bin a value falls in: the highest k in 0..GRID-1 with value >= k/GRID."""
    return max((k for k in range(1, GRID) if threshold >= k / GRID), default=0)


def _on_grid(threshold: float, k: int) -> bool:
    # Bin 0 also holds anything below 0, so only edges from 1/GRID up are exact.
    return k >= 1 and threshold == k / GRID


@dataclass(frozen=True)
class Split:
    """A window as whole UTC days [first, end) (None: no whole day) and the moments outside them."""

    whole: tuple[date, date] | None
    raw: tuple[tuple[datetime, datetime], ...]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def split(since: datetime, until: datetime) -> Split:
    """[since, until) as the whole UTC days in it and the partial pieces at either end."""
    since_utc, until_utc = since.astimezone(UTC), until.astimezone(UTC)
    first = since_utc.date() + timedelta(days=0 if since_utc == _midnight(since_utc.date()) else 1)
    end = until_utc.date()
    if first >= end:
        return Split(None, ((since, until),) if since < until else ())
    raw = tuple(piece for piece in ((since, _midnight(first)), (_midnight(end), until)) if piece[0] < piece[1])
    return Split((first, end), raw)


def in_pieces(column: Any, pieces: Iterable[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    """`column` in one of the [lo, hi) pieces (a Split's raw ones); false for none."""
    conds = [and_(column >= lo, column < hi) for lo, hi in pieces]
    return or_(*conds) if conds else false()


@dataclass(frozen=True)
class LabelCounts:
    """One AI label's tags over whole days: all of them, and how many have confidence >= each threshold."""

    total: int
    at_least: Mapping[float, int]


def at_least(s: Session, *, organization_id: int, days: tuple[date, date],
             thresholds: Mapping[str, Iterable[float]]) -> dict[str, LabelCounts]:
    """Per AI label, its AI tags created on the UTC days [days[0], days[1]) and those at or above each of its
    thresholds: the rollup's bins, plus one raw read per threshold off the k/GRID grid (its bin's tags)."""
    labels = list(thresholds)
    if not labels:
        return {}
    r = ROLLUP.c
    bins: dict[str, list[int]] = defaultdict(lambda: [0] * GRID)
    for label, b, n in s.execute(select(r.ai_label, r.conf_bin, func.sum(r.n))
                                 .where(r.organization_id == organization_id, r.day >= days[0], r.day < days[1],
                                        r.ai_label.in_(labels)).group_by(r.ai_label, r.conf_bin)):
        bins[label][int(b)] = int(n)
    off_grid: dict[float, list[str]] = defaultdict(list)
    for label, values in thresholds.items():
        for t in set(values):
            if not _on_grid(t, grid_bin(t)):
                off_grid[t].append(label)
    inside = _in_bin(s, organization_id=organization_id, days=days, off_grid=off_grid)
    out = {}
    for label, values in thresholds.items():
        counts = bins[label]
        above = [0] * (GRID + 1)  # above[k]: tags in bins k and up
        for k in range(GRID - 1, -1, -1):
            above[k] = above[k + 1] + counts[k]
        found = {}
        for t in set(values):
            k = grid_bin(t)
            found[t] = above[k] if _on_grid(t, k) else above[k + 1] + inside.get((t, label), 0)
        out[label] = LabelCounts(above[0], found)
    return out


def _in_bin(s: Session, *, organization_id: int, days: tuple[date, date],
            off_grid: Mapping[float, list[str]]) -> dict[tuple[float, str], int]:
    """Per (threshold, label): the label's AI tags of the days in the threshold's bin at or above it."""
    t = AI_TAGS.c
    out: dict[tuple[float, str], int] = {}
    for threshold, labels in off_grid.items():
        k = grid_bin(threshold)
        top = [] if k == GRID - 1 else [t.confidence < (k + 1) / GRID]
        for label, n in s.execute(
                select(t.ai_label, func.count())
                .where(t.organization_id == organization_id, t.ai_label.in_(labels),
                       t.confidence >= threshold, *top, t.created_at >= _midnight(days[0]),
                       t.created_at < _midnight(days[1]))
                .group_by(t.ai_label)):
            out[(threshold, label)] = int(n)
    return out
