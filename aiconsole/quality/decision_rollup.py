"""Sums of review decisions and of the AI tags' review state over a window, from what the database keeps on every
write (migration 0018) instead of a pass over every decision and tag of the window.

- quality_decision_daily (judged decisions per UTC day, provider, model, AI label, random order, accepted and
  k/100 bin): window totals, `decision_sums`. Whole UTC days from the rollup, the partial days at either end
  from review_decisions (through its (organization_id, created_at) index): at most a day and a bit.
- quality_decision_hourly (every decision per UTC hour, action, random order, accepted, judged): series per
  local day, `decisions_per_window`. Whole hours from the rollup; the partial hours at the ends, and an hour a
  local midnight falls inside (time zones off the hour), from review_decisions.
- quality_tag_hourly (AI tags per UTC hour of creation and AI label: all, reviewed, awaiting): `tag_cohort`.

Every function returns exactly what the same SQL over the raw rows would (tests/unit/test_decision_rollup.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, literal, select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import QualityDecisionDaily, QualityDecisionHourly, QualityTagHourly
from aiconsole.quality import tag_rollup
from aiconsole.quality.review_sql import (
    DECISIONS,
    JUDGED_ACTIONS,
    TAGS,
    Scope,
    bin_sql,
    check_sample,
    flag,
    window_index,
)

DAILY = cast(Table, QualityDecisionDaily.__table__)
HOURLY = cast(Table, QualityDecisionHourly.__table__)
TAG_HOURLY = cast(Table, QualityTagHourly.__table__)
FINE_BINS = tag_rollup.GRID  # the rollup's k/100 bins
GROUPS = ("ai_provider", "model", "label", "random_order", "conf_bin")
HOUR = timedelta(hours=1)


@dataclass
class DecisionSums:
    """Judged decisions: how many, their confidences' sum, how many approved and renamed (the rest rejected)."""

    n: int = 0
    conf_sum: float = 0.0
    approved: int = 0
    renamed: int = 0

    @property
    def rejected(self) -> int:
        return self.n - self.approved - self.renamed

    @property
    def correct(self) -> int:
        return self.approved + self.renamed

    def add(self, n: Any, conf_sum: Any, approved: Any, renamed: Any) -> None:
        self.n += int(n or 0)
        self.conf_sum += float(conf_sum or 0.0)
        self.approved += int(approved or 0)
        self.renamed += int(renamed or 0)


def _raw_column(name: str) -> ColumnElement[Any]:
    d = DECISIONS.c
    return {"ai_provider": func.coalesce(d.ai_provider, ""), "model": func.coalesce(d.model, ""),
            "label": func.coalesce(d.label_before, ""), "random_order": d.random_order,
            "conf_bin": bin_sql(d.confidence, FINE_BINS)}[name]


def _key(value: Any, name: str) -> Any:
    if name == "random_order":
        return bool(value)
    return int(value) if name == "conf_bin" else value


def decision_sums(s: Session, sc: Scope, *, group: Sequence[str], sample: str = "all",
                  provider: str | None = None, model: str | None = None,
                  labels: Sequence[str] | None = None) -> dict[tuple[Any, ...], DecisionSums]:
    """The window's judged decisions summed per `group` (names of GROUPS; provider, model and label '' when
    unknown), from random-order reviews only for sample 'random', of one provider / model / labels if given."""
    check_sample(sample)
    unknown = set(group) - set(GROUPS)
    if unknown:
        raise ValueError(f"no rollup column {sorted(unknown)}")
    out: dict[tuple[Any, ...], DecisionSums] = defaultdict(DecisionSums)
    window = tag_rollup.split(sc.since, sc.now)
    r, d = DAILY.c, DECISIONS.c
    if window.whole is not None:
        where = [r.organization_id == sc.organization_id, r.day >= window.whole[0], r.day < window.whole[1]]
        where += _filters(r.random_order, r.ai_provider, r.model, r.label, sample, provider, model, labels)
        keys = [r[g] for g in group]
        for *key, n, conf, ok, renamed in s.execute(
                select(*keys, func.sum(r.n), func.sum(r.conf_sum), func.sum(r.approved), func.sum(r.renamed))
                .where(*where).group_by(*keys)):
            out[tuple(_key(v, g) for v, g in zip(key, group, strict=True))].add(n, conf, ok, renamed)
    if window.raw:
        where = [d.organization_id == sc.organization_id, tag_rollup.in_pieces(d.created_at, window.raw),
                 d.action.in_(JUDGED_ACTIONS), d.confidence.is_not(None)]
        where += _filters(d.random_order, d.ai_provider, d.model, d.label_before, sample, provider, model, labels)
        cols = [_raw_column(g).label(g) for g in group]
        inner = select(*cols, d.confidence, d.action).where(*where).subquery()
        raw_keys = [inner.c[g] for g in group]
        for *key, n, conf, ok, renamed in s.execute(
                select(*raw_keys, func.count(), func.sum(inner.c.confidence),
                       func.sum(flag(inner.c.action == "approve")), func.sum(flag(inner.c.action == "rename")))
                .group_by(*raw_keys)):
            out[tuple(_key(v, g) for v, g in zip(key, group, strict=True))].add(n, conf, ok, renamed)
    return dict(out)


def _filters(random_col: Any, provider_col: Any, model_col: Any, label_col: Any, sample: str,
             provider: str | None, model: str | None, labels: Sequence[str] | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if sample == "random":
        conds.append(random_col.is_(True))
    if provider is not None:
        conds.append(provider_col == provider)
    if model is not None:
        conds.append(model_col == model)
    if labels is not None:
        conds.append(label_col.in_(list(labels)))
    return conds


# ------------------------------------------------------------------------------------------------ hourly


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + HOUR


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class HourSplit:
    """A span as whole UTC hours [first, end) (minus `straddled`: hours a window start falls inside) and the
    pieces read raw: the partial hours at either end and the straddled hours."""

    first: datetime
    end: datetime
    straddled: frozenset[datetime]
    raw: tuple[tuple[datetime, datetime], ...]


def split_hours(since: datetime, until: datetime, starts: Sequence[datetime] = ()) -> HourSplit:
    """[since, until) as whole UTC hours and raw pieces; an hour with a window start strictly inside is raw."""
    first, end = _ceil_hour(since), _floor_hour(until)
    if first >= end:
        return HourSplit(first, first, frozenset(), ((since, until),) if since < until else ())
    straddled = frozenset(_floor_hour(x) for x in starts if first <= x < end and _floor_hour(x) != x)
    raw = [(since, first), (end, until), *((h, h + HOUR) for h in sorted(straddled))]
    return HourSplit(first, end, straddled, tuple(p for p in raw if p[0] < p[1]))


@dataclass(frozen=True)
class HourCell:
    """Decisions of one window (index into the starts) with one action, sample and rule verdict."""

    window: int
    action: str
    random_order: bool
    ai_accepted: bool
    judged: bool
    n: int


def decisions_per_window(s: Session, sc: Scope, starts: Sequence[datetime]) -> list[HourCell]:
    """The decisions made in [starts[0], now) counted per window [starts[i], starts[i+1]) (the last up to now),
    action, random order, accepted and judged."""
    org, h, d = sc.organization_id, HOURLY.c, DECISIONS.c
    hours = split_hours(starts[0], sc.now, starts)
    cells: dict[tuple[int, str, bool, bool, bool], int] = defaultdict(int)
    if hours.first < hours.end:
        where = [h.organization_id == org, h.hour >= hours.first, h.hour < hours.end]
        if hours.straddled:
            where.append(h.hour.not_in(sorted(hours.straddled)))
        inner = select(window_index(h.hour, starts).label("w"), h.action, h.random_order, h.ai_accepted, h.judged,
                       h.n).where(*where).subquery()
        c = inner.c
        for w, action, rnd, acc, judged, n in s.execute(
                select(c.w, c.action, c.random_order, c.ai_accepted, c.judged, func.sum(c.n))
                .group_by(c.w, c.action, c.random_order, c.ai_accepted, c.judged)):
            cells[(int(w), action, bool(rnd), bool(acc), bool(judged))] += int(n)
    if hours.raw:
        is_judged = and_(d.action.in_(JUDGED_ACTIONS), d.confidence.is_not(None))
        accepted = func.coalesce(d.ai_verdict == "accepted", literal(False))
        inner = (select(window_index(d.created_at, starts).label("w"), d.action, d.random_order,
                        flag(accepted).label("acc"), flag(is_judged).label("judged"))
                 .where(d.organization_id == org, tag_rollup.in_pieces(d.created_at, hours.raw)).subquery())
        c = inner.c
        for w, action, rnd, acc, judged, n in s.execute(
                select(c.w, c.action, c.random_order, c.acc, c.judged, func.count())
                .group_by(c.w, c.action, c.random_order, c.acc, c.judged)):
            cells[(int(w), action, bool(rnd), bool(acc), bool(judged))] += int(n)
    return [HourCell(w, a, r, acc, j, n) for (w, a, r, acc, j), n in sorted(cells.items())]


@dataclass
class TagCohort:
    """One AI label's AI tags made in the window: all of them, those reviewed since, those awaiting review."""

    tags: int = 0
    reviewed: int = 0
    awaiting: int = 0

    def add(self, tags: Any, reviewed: Any, awaiting: Any) -> None:
        self.tags += int(tags or 0)
        self.reviewed += int(reviewed or 0)
        self.awaiting += int(awaiting or 0)


def tag_cohort(s: Session, sc: Scope) -> dict[str, TagCohort]:
    """Per AI label, its AI tags made in the window and how many are reviewed or await review now."""
    org, h = sc.organization_id, TAG_HOURLY.c
    hours = split_hours(sc.since, sc.now)
    out: dict[str, TagCohort] = defaultdict(TagCohort)
    if hours.first < hours.end:
        for label, n, reviewed, awaiting in s.execute(
                select(h.ai_label, func.sum(h.n), func.sum(h.reviewed), func.sum(h.awaiting))
                .where(h.organization_id == org, h.hour >= hours.first, h.hour < hours.end).group_by(h.ai_label)):
            out[label].add(n, reviewed, awaiting)
    if hours.raw:
        f, t = tag_rollup.AI_TAGS.c, TAGS.c
        waiting = and_(t.reviewed_at.is_(None), t.review_state == "needs_review")
        for label, n, reviewed, awaiting in s.execute(
                select(f.ai_label, func.count(), func.sum(flag(t.reviewed_at.is_not(None))), func.sum(flag(waiting)))
                .select_from(tag_rollup.AI_TAGS.join(TAGS, TAGS.c.id == f.tag_id))
                .where(f.organization_id == org, tag_rollup.in_pieces(f.created_at, hours.raw)).group_by(f.ai_label)):
            out[label].add(n, reviewed, awaiting)
    return dict(out)
