"""Reviewer agreement on doubly reviewed photos: Cohen's kappa and percent agreement per label and per pair of
reviewers, the disagreements, an admin's adjudication (their labels become the photo's ground truth), each
reviewer's agreement with the adjudicated answers, and reviewer throughput. Counted in SQL.

The rule for one photo: every label either reviewer kept, or the AI produced, is an item; each reviewer's
answer on it is keep or reject. Approve keeps the AI's label, reject rejects it; a rename rejects the AI's
label and keeps the new one; an added label is kept. A label a reviewer did not keep (nor decide on) is a
reject by that reviewer: their final labels are what they kept. So renaming 'cat' to 'kitten' against an
approve of 'cat' is two disagreements (cat: reject vs keep; kitten: keep vs reject).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, distinct, func, insert, literal, select, true, union_all
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import DoubleReview, GroundTruth, Review, ReviewDecision, User
from aiconsole.platform.db.sql import hour_floor
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality.double_review import SECOND_REVIEW
from aiconsole.quality.review_record import checked_label
from aiconsole.quality.stats import Agreement

DOUBLES = cast(Table, DoubleReview.__table__)
REVIEWS = cast(Table, Review.__table__)
DECISIONS = cast(Table, ReviewDecision.__table__)
TRUTH = cast(Table, GroundTruth.__table__)
USERS = cast(Table, User.__table__)
DECIDED = ("reviewed", "adjudicated")
ADJUDICATION = "adjudication"
MAX_DISAGREEMENTS = 200
MAX_LABELS = 100


@dataclass(frozen=True)
class Table2x2:
    """Two reviewers' keep/reject answers on the same items: both kept, first only, second only, neither."""

    both: int
    first_only: int
    second_only: int
    neither: int

    @property
    def n(self) -> int:
        """Items decided by both."""
        return self.both + self.first_only + self.second_only + self.neither

    def swapped(self) -> Table2x2:
        """The same table with the reviewers' roles exchanged."""
        return Table2x2(self.both, self.second_only, self.first_only, self.neither)

    def __add__(self, other: Table2x2) -> Table2x2:
        return Table2x2(self.both + other.both, self.first_only + other.first_only,
                        self.second_only + other.second_only, self.neither + other.neither)


def kappa(table: Table2x2) -> Agreement | None:
    """Percent agreement and Cohen's kappa from a 2x2 table (None for no items; kappa None when chance
    agreement is perfect), the same figures as `stats.agreement` on the paired answers."""
    n = table.n
    if n == 0:
        return None
    observed = (table.both + table.neither) / n
    first, second = (table.both + table.first_only) / n, (table.both + table.second_only) / n
    expected = first * second + (1 - first) * (1 - second)
    value = None if math.isclose(expected, 1.0) else (observed - expected) / (1 - expected)
    return Agreement(n=n, observed=observed, expected=expected, kappa=value)


@dataclass(frozen=True)
class LabelAgreement:
    """Agreement on one label (or one pair of reviewers: `name` is 'first / second')."""

    name: str
    table: Table2x2
    agreement: Agreement | None


@dataclass(frozen=True)
class Disagreement:
    """A label two reviewers answered differently on one photo (True: kept)."""

    double_review_id: int
    photo_id: int
    label: str
    first_kept: bool
    second_kept: bool
    first_reviewer: str | None
    second_reviewer: str | None
    status: str


@dataclass(frozen=True)
class ReviewerFigures:
    """One reviewer: reviews (first and second) in the window, active hours and reviews per active hour; on
    adjudicated photos, how many of their label answers matched the adjudicated labels."""

    email: str | None
    reviews: int
    second_reviews: int
    active_hours: int
    per_hour: float | None
    adjudicated_answers: int
    matching_answers: int

    @property
    def adjudicated_agreement(self) -> float | None:
        """The share of their answers that matched the adjudicated labels (None: none adjudicated)."""
        return self.matching_answers / self.adjudicated_answers if self.adjudicated_answers else None


@dataclass(frozen=True)
class AgreementReport:
    """Everything the Agreement tab shows."""

    waiting: int
    reviewed: int
    adjudicated: int
    overall: LabelAgreement
    labels: tuple[LabelAgreement, ...]
    pairs: tuple[LabelAgreement, ...]
    disagreements: tuple[Disagreement, ...]
    reviewers: tuple[ReviewerFigures, ...]


def _calls(org: int) -> Any:
    """(double review, side 1|2, label, keep 0|1) for every decided double review: the module's rule."""
    dr, d = DOUBLES.c, DECISIONS.c
    joined = DECISIONS.join(DOUBLES, and_(dr.organization_id == org, dr.status.in_(DECIDED), d.review_id.in_(
        [dr.first_review_id, dr.second_review_id])))
    side = case((d.review_id == dr.first_review_id, 1), else_=2)
    before = select(dr.id.label("dr"), side.label("side"), d.label_before.label("label"),
                    case((d.action == "approve", 1), else_=0).label("keep")).select_from(joined).where(
        d.action.in_(("approve", "reject", "rename")))
    after = select(dr.id.label("dr"), side.label("side"), d.label_after.label("label"),
                   literal(1).label("keep")).select_from(joined).where(d.action.in_(("rename", "add")))
    rows = union_all(before, after).subquery()
    return (select(rows.c.dr, rows.c.side, rows.c.label, func.max(rows.c.keep).label("keep"))
            .group_by(rows.c.dr, rows.c.side, rows.c.label).subquery("calls"))


def _pairs(calls: Any) -> Any:
    """(double review, label, first keep, second keep), an absent answer a reject (0)."""
    def kept(side: int) -> Any:
        return func.coalesce(func.max(case((calls.c.side == side, calls.c.keep))), 0)
    return (select(calls.c.dr, calls.c.label, kept(1).label("a"), kept(2).label("b"))
            .group_by(calls.c.dr, calls.c.label).subquery("pairs"))


def _counts(p: Any) -> list[Any]:
    return [func.sum(p.c.a * p.c.b), func.sum(p.c.a * (1 - p.c.b)), func.sum((1 - p.c.a) * p.c.b), func.count()]


def _table(both: Any, first: Any, second: Any, n: Any) -> Table2x2:
    both, first, second, n = (int(x or 0) for x in (both, first, second, n))
    return Table2x2(both, first, second, n - both - first - second)


def agreement_report(actor: Actor, *, days: int = 30, now: datetime | None = None,
                     settings: Settings | None = None) -> AgreementReport:
    """Agreement over every decided double review; throughput over the last `days` (quality.view)."""
    actor.require("quality.view")
    if not 1 <= days <= 366:
        raise ValidationFailed(f"A window of {days} days is not allowed.", hint="Ask for 1 to 366 days.")
    now, org = now or utcnow(), actor.organization_id
    with org_session(org, settings=settings) as s:
        statuses = {status: int(n) for status, n in s.execute(
            select(DOUBLES.c.status, func.count()).where(DOUBLES.c.organization_id == org)
            .group_by(DOUBLES.c.status))}
        p = _pairs(_calls(org))
        overall = _table(*s.execute(select(*_counts(p))).one())
        labels = tuple(LabelAgreement(label, t, kappa(t)) for label, t in (
            (row[0], _table(*row[1:])) for row in s.execute(
                select(p.c.label, *_counts(p)).group_by(p.c.label).order_by(func.count().desc(), p.c.label)
                .limit(MAX_LABELS))))
        return AgreementReport(
            waiting=int(statuses.get("waiting", 0)), reviewed=int(statuses.get("reviewed", 0)),
            adjudicated=int(statuses.get("adjudicated", 0)),
            overall=LabelAgreement("all labels", overall, kappa(overall)), labels=labels,
            pairs=_by_pair(s, p), disagreements=_disagreements(s, p),
            reviewers=_reviewers(s, org=org, since=now - timedelta(days=days), now=now))


def _reviewer_columns() -> tuple[Any, Any, Any]:
    first, second = REVIEWS.alias("first"), REVIEWS.alias("second")
    u1, u2 = USERS.alias("u1"), USERS.alias("u2")
    joined = (DOUBLES.join(first, first.c.id == DOUBLES.c.first_review_id)
              .outerjoin(second, second.c.id == DOUBLES.c.second_review_id)
              .outerjoin(u1, u1.c.id == first.c.reviewer_id).outerjoin(u2, u2.c.id == second.c.reviewer_id))
    return joined, u1.c.email, u2.c.email


def _by_pair(s: Session, p: Any) -> tuple[LabelAgreement, ...]:
    joined, first, second = _reviewer_columns()
    merged: dict[tuple[str, str], Table2x2] = defaultdict(lambda: Table2x2(0, 0, 0, 0))
    for a, b, *counts in s.execute(select(first, second, *_counts(p)).select_from(
            joined.join(p, p.c.dr == DOUBLES.c.id)).group_by(first, second)):
        table = _table(*counts)
        # A with B and B with A are one pair: oriented by name so their tables add up.
        key, table = ((a or "", b or ""), table) if (a or "") <= (b or "") else ((b or "", a or ""), table.swapped())
        merged[key] = merged[key] + table
    return tuple(LabelAgreement(f"{a or 'deleted user'} / {b or 'deleted user'}", t, kappa(t))
                 for (a, b), t in sorted(merged.items(), key=lambda kv: (-kv[1].n, kv[0])))


def _disagreements(s: Session, p: Any) -> tuple[Disagreement, ...]:
    joined, first, second = _reviewer_columns()
    rows = s.execute(select(DOUBLES.c.id, DOUBLES.c.photo_id, p.c.label, p.c.a, p.c.b, first, second,
                            DOUBLES.c.status).select_from(joined.join(p, p.c.dr == DOUBLES.c.id))
                     .where(p.c.a != p.c.b)
                     .order_by(case((DOUBLES.c.status == "reviewed", 0), else_=1), DOUBLES.c.id, p.c.label)
                     .limit(MAX_DISAGREEMENTS))
    return tuple(Disagreement(int(r[0]), int(r[1]), r[2], bool(r[3]), bool(r[4]), r[5], r[6], r[7]) for r in rows)


def _reviewers(s: Session, *, org: int, since: datetime, now: datetime) -> tuple[ReviewerFigures, ...]:
    r = REVIEWS.c
    pace = {who: (int(n), int(second), int(hours)) for who, n, second, hours in s.execute(
        select(r.reviewer_id, func.count(), func.sum(case((r.queue_order == SECOND_REVIEW, 1), else_=0)),
               func.count(distinct(hour_floor(r.submitted_at))))
        .where(r.organization_id == org, r.submitted_at >= since, r.submitted_at < now, r.reviewer_id.is_not(None))
        .group_by(r.reviewer_id))}
    matches = _adjudicated_matches(s, org=org)
    emails = {who: email for who, email in s.execute(
        select(USERS.c.id, USERS.c.email).where(USERS.c.id.in_(set(pace) | set(matches))))}
    figures = [ReviewerFigures(emails.get(who), *pace.get(who, (0, 0, 0))[:2], pace.get(who, (0, 0, 0))[2],
                               pace[who][0] / pace[who][2] if who in pace and pace[who][2] else None,
                               *matches.get(who, (0, 0))) for who in set(pace) | set(matches)]
    return tuple(sorted(figures, key=lambda f: (-f.reviews, f.email or "")))


def _adjudicated_matches(s: Session, *, org: int) -> dict[int, tuple[int, int]]:
    """Per reviewer on adjudicated photos: label answers, and how many matched the adjudicated labels."""
    calls, dr, t = _calls(org), DOUBLES.c, TRUTH.c
    truth = (select(dr.id.label("dr"), t.label).select_from(DOUBLES.join(TRUTH, t.photo_id == dr.photo_id))
             .where(dr.organization_id == org, dr.status == "adjudicated", t.source == ADJUDICATION).subquery())
    items = union_all(select(calls.c.dr, calls.c.label), select(truth.c.dr, truth.c.label)).subquery()
    universe = select(items.c.dr, items.c.label).distinct().subquery()
    sides = union_all(select(literal(1).label("side")), select(literal(2).label("side"))).subquery()
    first, second = REVIEWS.alias("r1"), REVIEWS.alias("r2")
    who = case((sides.c.side == 1, first.c.reviewer_id), else_=second.c.reviewer_id)
    keep = func.coalesce(calls.c.keep, 0)
    right = case((truth.c.label.is_(None), 0), else_=1)
    query = (select(who, func.count(), func.sum(case((keep == right, 1), else_=0)))
             .select_from(universe.join(sides, true())
                          .join(DOUBLES, and_(dr.id == universe.c.dr, dr.status == "adjudicated"))
                          .join(first, first.c.id == dr.first_review_id)
                          .outerjoin(second, second.c.id == dr.second_review_id)
                          .outerjoin(calls, and_(calls.c.dr == universe.c.dr, calls.c.side == sides.c.side,
                                                 calls.c.label == universe.c.label))
                          .outerjoin(truth, and_(truth.c.dr == universe.c.dr, truth.c.label == universe.c.label)))
             .where(who.is_not(None)).group_by(who))
    return {int(w): (int(n), int(m or 0)) for w, n, m in s.execute(query)}


@dataclass(frozen=True)
class Adjudication:
    """What an adjudication wrote: the photo's ground truth before and after."""

    double_review_id: int
    photo_id: int
    before: tuple[str, ...]
    labels: tuple[str, ...]


def adjudicate(actor: Actor, *, double_review_id: int, labels: Sequence[str], now: datetime | None = None,
               settings: Settings | None = None) -> Adjudication:
    """An admin's final labels for a doubly reviewed photo (quality.adjudicate): they replace its ground truth
    (source 'adjudication'), the double review becomes 'adjudicated'; audited. Tags are left as reviewed.
    Adjudicating again replaces the earlier answer."""
    actor.require("quality.adjudicate")
    final = tuple(sorted(dict.fromkeys(checked_label(x, "adjudicated") for x in labels)))
    now, org = now or utcnow(), actor.organization_id
    with org_session(org, settings=settings) as s:
        double = s.execute(select(DoubleReview).where(DoubleReview.id == double_review_id,
                                                      DoubleReview.organization_id == org)
                           .with_for_update()).scalar_one_or_none()
        if double is None:
            raise NotFound(f"Double review #{double_review_id} does not exist in this organization.",
                           hint="Reload the Agreement tab's disagreements.")
        if double.status == "waiting":
            raise ConflictError(f"Photo #{double.photo_id} has no second review yet: there is nothing to settle.",
                                hint="Adjudicate after a second reviewer has reviewed it.")
        before = tuple(s.scalars(select(TRUTH.c.label).where(TRUTH.c.photo_id == double.photo_id)
                                 .order_by(TRUTH.c.label)))
        s.execute(delete(TRUTH).where(TRUTH.c.photo_id == double.photo_id))
        if final:
            s.execute(insert(TRUTH), [{"organization_id": org, "photo_id": double.photo_id, "label": label,
                                       "source": ADJUDICATION, "review_id": None, "set_by": actor.user_id,
                                       "created_at": now} for label in final])
        status_before = double.status
        double.status, double.adjudicated_by, double.adjudicated_at = "adjudicated", actor.user_id, now
        audit.record(s, actor=actor, action="review.adjudicate", entity_type="double_review",
                     entity_id=double.id, before={"status": status_before, "ground_truth": list(before)},
                     after={"status": "adjudicated", "ground_truth": list(final)},
                     summary=f"Adjudicated photo #{double.photo_id}: {', '.join(final) or 'no labels'}")
        return Adjudication(double.id, double.photo_id, before, final)
