"""The SQL vocabulary over review decisions that analytics and calibration share: the window of an
organization's local calendar days, a moment's window and a confidence's bin as SQL CASEs, the samples
(random-order reviews, or all), which decisions judge an AI tag and which call it right.

A decided AI tag is right when the reviewer approved or renamed it (the tag pointed at something in the
photo; a rename fixes its word, which the correction rate counts) and wrong when rejected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, case, literal, text
from sqlalchemy.orm import Session

from aiconsole.platform.clock import org_clock
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import PhotoTag, Review, ReviewDecision
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

DECISIONS = cast(Table, ReviewDecision.__table__)
REVIEWS = cast(Table, Review.__table__)
TAGS = cast(Table, PhotoTag.__table__)

CORRECT_ACTIONS = ("approve", "rename")
JUDGED_ACTIONS = (*CORRECT_ACTIONS, "reject")  # decisions on an AI tag ('add' makes a human one)
SAMPLES = ("random", "all")
SAMPLE_NOTES = {
    "random": "Random-sample reviews: an unbiased estimate of the AI's precision.",
    "all": "All reviews: biased, since the other queue orders favour the uncertain tags the rules send to review.",
}
NO_RANDOM_REVIEWS = "No random-sample reviews yet: review in Random order to estimate precision."
DEFAULT_DAYS, MAX_DAYS = 30, 365


@dataclass(frozen=True)
class Scope:
    """The organization and its window: local calendar days (and their UTC starts, oldest first) up to `now`."""

    organization_id: int
    tz: str
    now: datetime
    days: tuple[date, ...]
    day_starts: tuple[datetime, ...]

    @property
    def since(self) -> datetime:
        return self.day_starts[0]


def scope(session: Session, *, organization_id: int, days: int, now: datetime | None) -> Scope:
    """The window of the last `days` local calendar days of the organization, today included."""
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(f"A window of {days} days is outside 1..{MAX_DAYS}.",
                               hint="Pick e.g. 7, 30 or 90 days.")
    clock = org_clock(session, organization_id=organization_id, now=now)
    today = clock.now.astimezone(clock.tz).date()
    local = tuple(today - timedelta(days=back) for back in range(days - 1, -1, -1))
    starts = tuple(datetime.combine(day, time(0), tzinfo=clock.tz).astimezone(UTC) for day in local)
    return Scope(organization_id, str(clock.tz), clock.now, local, starts)


@contextmanager
def read_session(organization_id: int, *, settings: Settings | None = None) -> Iterator[Session]:
    """An organization's session for the analytics reads: on PostgreSQL without JIT for its transaction, which
    compiled the many-branch CASEs over hundreds of thousands of rows for 0.6-1.0 s a statement (the queries
    themselves take less; benchmarks/bench_quality_analytics.py)."""
    with org_session(organization_id, settings=settings) as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SET LOCAL jit = off"))
        yield s


def _highest(holds: Any, lo: int, hi: int) -> ColumnElement[int]:
    """The highest i in lo..hi for which `holds(i)` is true, `holds` true at lo and monotone (true up to some
    i, false above), as nested CASEs: a binary search, about log2(hi - lo) comparisons a row instead of up to
    hi - lo in a flat CASE (the same comparisons, so the same answer for every value, NULL included)."""
    if lo == hi:
        return literal(lo)
    mid = (lo + hi + 1) // 2
    return case((holds(mid), _highest(holds, mid, hi)), else_=_highest(holds, lo, mid - 1))


def window_index(column: Any, starts: Sequence[datetime]) -> ColumnElement[int]:
    """The index of the window [starts[i], starts[i+1]) a moment falls in (0 for anything earlier)."""
    return _highest(lambda i: column >= starts[i], 0, len(starts) - 1)


def bin_sql(confidence: Any, n_bins: int) -> ColumnElement[int]:
    """`stats.bin_index` in SQL: confidence >= i/n puts it in bin i (edges compared as i / n, not by casting
    confidence * n, which is 28.999... for 0.58 x 50); 1.0 is in the top bin."""
    return _highest(lambda i: confidence >= i / n_bins, 0, n_bins - 1)


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 where `condition` holds, else 0 (a SUM of it counts the rows)."""
    return case((condition, 1), else_=0)


def from_random_review() -> ColumnElement[bool]:
    """The decision was made in a random-order review (its row's random_order, set from the review on insert)."""
    return DECISIONS.c.random_order.is_(True)


def check_sample(sample: str) -> str:
    """`sample` if it is one of SAMPLES, else a ValidationFailed naming them."""
    if sample not in SAMPLES:
        raise ValidationFailed(f"There is no sample {sample!r}.", hint=f"Use one of: {', '.join(SAMPLES)}.")
    return sample


def judged(sc: Scope, sample: str) -> list[ColumnElement[bool]]:
    """The decisions on AI tags made in the window, from random-order reviews only for sample 'random'."""
    check_sample(sample)
    d = DECISIONS.c
    conds = [d.organization_id == sc.organization_id, d.created_at >= sc.since, d.created_at < sc.now,
             d.action.in_(JUDGED_ACTIONS), d.confidence.is_not(None)]
    return [*conds, from_random_review()] if sample == "random" else conds


CORRECT = flag(DECISIONS.c.action.in_(CORRECT_ACTIONS))
