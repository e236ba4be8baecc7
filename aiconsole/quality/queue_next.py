"""The next photo of an order for a reviewer, found through indexes instead of ordering the whole queue.

`review_queue.preview` orders every waiting photo (right, but its cost grows with the queue: 80 ms at 20,000
photos). A claim needs only the first, so each order walks an index and stops at the first photo that matches:

- lowest confidence: band tags in confidence order. The band is tags recorded as needs_review (their own
  partial index) or, recorded otherwise, within [lowest reject, highest accept) of today's rules (a threshold
  change moved them in; the other undecided AI tags' index), whose exact verdict `verdict_sql` then checks;
  the smaller of the two first hits wins. A photo's key
  is its lowest band tag, so the first band tag met belongs to the first photo.
- oldest: photos in needs_review by arrival (a partial index), and photos another tag puts in the band by
  thresholds (the band range again), the older first.
- random sample: nearly every processed photo has an undecided AI tag, so ids drawn from the session seed's
  stream are probed a batch at a time by primary key; a sparse queue (a narrow filter) falls back to
  ordering it by the seed's key, as preview does.
- disagreement: photo_disagreements by (organization, Jaccard, photo id), below the threshold, lowest first.

Each query applies the queue's full conditions (queue_sql), leaves out photos another reviewer holds and the
ones passed over, and returns one photo id or None; the caller locks and claims it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, select
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import RuleSet, verdict_sql
from aiconsole.quality.queue_sql import (
    CLAIMS,
    DISAGREEMENTS,
    PHOTOS,
    REVIEWABLE_STATUSES,
    TAGS,
    QueueFilters,
    arrived,
    photo_match,
    random_key,
    tag_match,
    threshold_sql,
)

PROBES, PROBE_ROUNDS = 64, 3  # random order: ids per probe query, and queries before the full ordering
ESTIMATE_PROBES, ESTIMATE_MIN_HITS = 400, 40  # the random sample's size: ids probed, hits an estimate needs


def band_range(rules: RuleSet) -> tuple[float, float]:
    """[lowest reject threshold, highest accept threshold) over the global rules and every label override."""
    pairs = [(rules.accept_threshold, rules.reject_threshold), *rules.overrides.values()]
    return min(reject for _accept, reject in pairs), max(accept for accept, _reject in pairs)


def _free(org: int, me: int, now: datetime, passed: Sequence[int]) -> list[ColumnElement[bool]]:
    """Not held by another reviewer's live claim, and not passed over in this claim or session."""
    p, c = PHOTOS.c, CLAIMS.c
    conds: list[ColumnElement[bool]] = [~exists(select(c.id).where(c.photo_id == p.id, c.expires_at > now,
                                                                   c.reviewer_id != me))]
    if passed:
        conds.append(p.id.not_in([int(i) for i in passed]))
    return conds


def _matching_photo(org: int, rules: RuleSet, order: str, filters: QueueFilters, free: list[ColumnElement[bool]]
                    ) -> list[ColumnElement[bool]]:
    return [*photo_match(org, rules, order, filters, with_tags=False), *free]


def _band_tags(org: int, rules: RuleSet, filters: QueueFilters, *,
               correlated: bool = True) -> tuple[list[ColumnElement[bool]], ...]:
    """The two halves of the band as conditions on a tag: recorded needs_review | in the thresholds' band."""
    t = TAGS.c
    base = tag_match(org, rules, "random", filters, correlated=correlated)  # undecided AI tags of the filters
    lo, hi = band_range(rules)
    recorded = [*base, t.review_state == "needs_review"]
    # Moved into the band by a threshold change (recorded otherwise): its own partial index, few rows.
    by_rules = [*base, t.review_state != "needs_review", t.confidence >= lo, t.confidence < hi,
                verdict_sql(rules, t.label, t.confidence) == "needs_review"]
    return recorded, by_rules


def _tag_walk(conds: list[ColumnElement[bool]], photo: list[ColumnElement[bool]], key: Any,
              tie: Any) -> Select[Any]:
    """The first tag meeting `conds` whose photo meets `photo`, in (`key`, `tie`) order: an index's own order,
    so a run of equal keys is not sorted first."""
    return (select(TAGS.c.photo_id, key.label("key"), tie.label("tie"))
            .select_from(TAGS.join(PHOTOS, PHOTOS.c.id == TAGS.c.photo_id))
            .where(*conds, *photo).order_by(key, tie).limit(1))


def _first(session: Session, queries: list[Select[Any]]) -> int | None:
    hits = [row for q in queries if (row := session.execute(q).first()) is not None]
    if not hits:
        return None
    return int(min(hits, key=lambda r: (r.key, r.tie)).photo_id)


def lowest_confidence(session: Session, *, org: int, me: int, rules: RuleSet, filters: QueueFilters, now: datetime,
                      passed: Sequence[int]) -> int | None:
    """The waiting photo with the lowest band tag (then the lowest id)."""
    photo = _matching_photo(org, rules, "lowest_confidence", filters, _free(org, me, now, passed))
    return _first(session, [_tag_walk(conds, photo, TAGS.c.confidence, TAGS.c.photo_id)
                            for conds in _band_tags(org, rules, filters)])


def oldest(session: Session, *, org: int, me: int, rules: RuleSet, filters: QueueFilters, now: datetime,
           passed: Sequence[int]) -> int | None:
    """The waiting photo that arrived first (then the lowest id)."""
    p = PHOTOS.c
    free = _free(org, me, now, passed)
    in_review = (select(p.id.label("photo_id"), p.created_at.label("key"), p.id.label("tie"))
                 .where(p.status == "needs_review", *photo_match(org, rules, "oldest", filters), *free)
                 .order_by(p.created_at, p.id).limit(1))
    _recorded, by_rules = _band_tags(org, rules, filters, correlated=False)
    # The photos of the few tags a threshold change moved into the band, computed first (MATERIALIZED): left
    # to itself the planner sorts every processed photo by arrival and probes each for such a tag (1.5 s at a
    # million photos), as it cannot know the band range is nearly empty.
    moved = (select(TAGS.c.photo_id).where(*by_rules).cte("moved_into_band")
             .prefix_with("MATERIALIZED", dialect="postgresql"))
    banded = (select(p.id.label("photo_id"), p.created_at.label("key"), p.id.label("tie"))
              .where(p.id.in_(select(moved.c.photo_id)), *_matching_photo(org, rules, "oldest", filters, free))
              .order_by(p.created_at, p.id).limit(1))
    return _first(session, [in_review, banded])


def random_sample(session: Session, *, org: int, me: int, rules: RuleSet, filters: QueueFilters, now: datetime,
                  passed: Sequence[int], seed: int) -> int | None:
    """A photo drawn uniformly from the waiting ones, reproducibly for the seed and what was passed over."""
    p = PHOTOS.c
    lo_hi = session.execute(select(func.min(p.id), func.max(p.id)).where(
        p.organization_id == org, p.status.in_(("completed", "needs_review")))).one()
    free = _free(org, me, now, passed)
    if lo_hi[0] is not None:
        rng = random.Random(f"review-queue/{seed}/{len(passed)}")
        for _ in range(PROBE_ROUNDS):
            ids = [rng.randint(int(lo_hi[0]), int(lo_hi[1])) for _ in range(PROBES)]
            rank = case({i: n for n, i in enumerate(dict.fromkeys(ids))}, value=p.id)
            hit = session.scalar(select(p.id).where(p.id.in_(ids), *photo_match(org, rules, "random", filters),
                                                    *free).order_by(rank).limit(1))
            if hit is not None:
                return int(hit)
    return session.scalar(select(p.id).where(*photo_match(org, rules, "random", filters), *free)
                          .order_by(random_key(p.id, seed), p.created_at, p.id).limit(1))


def disagreement(session: Session, *, org: int, me: int, rules: RuleSet, filters: QueueFilters, now: datetime,
                 passed: Sequence[int]) -> int | None:
    """The waiting photo whose sources disagree most (the lowest Jaccard below the threshold, then the lowest id)."""
    d, p = DISAGREEMENTS.c, PHOTOS.c
    query = (select(d.photo_id).select_from(DISAGREEMENTS.join(PHOTOS, p.id == d.photo_id))
             .where(d.organization_id == org, d.jaccard < threshold_sql(org),
                    *photo_match(org, rules, "random", filters), *_free(org, me, now, passed))
             .order_by(d.jaccard, d.photo_id).limit(1))
    hit = session.scalar(query)
    return None if hit is None else int(hit)


def disagreement_size(session: Session, *, org: int, rules: RuleSet, filters: QueueFilters) -> int:
    """How many waiting photos disagree below the threshold, counted from the disagreements' index."""
    d, p = DISAGREEMENTS.c, PHOTOS.c
    return int(session.scalar(select(func.count()).select_from(DISAGREEMENTS.join(PHOTOS, p.id == d.photo_id))
                              .where(d.organization_id == org, d.jaccard < threshold_sql(org),
                                     *photo_match(org, rules, "random", filters))) or 0)


def random_population(session: Session, *, org: int, rules: RuleSet, filters: QueueFilters) -> tuple[int, bool]:
    """(photos the random sample draws from, exact?): estimated from ESTIMATE_PROBES ids drawn over the
    processed photos' id range (the share that match, times the range), which costs a few primary-key probes
    where the exact count reads every processed photo's tags (600 ms at a million); counted exactly when too
    few probes hit for an estimate (a sparse queue: a narrow filter)."""
    p = PHOTOS.c
    lo, hi = session.execute(select(func.min(p.id), func.max(p.id)).where(
        p.organization_id == org, p.status.in_(REVIEWABLE_STATUSES))).one()
    if lo is not None:
        span = int(hi) - int(lo) + 1
        whole = span <= ESTIMATE_PROBES  # a small range is probed id by id: that is the count
        rng = random.Random(f"review-queue/size/{org}")
        ids = (list(range(int(lo), int(hi) + 1)) if whole else
               sorted({rng.randint(int(lo), int(hi)) for _ in range(ESTIMATE_PROBES)}))
        hits = int(session.scalar(select(func.count()).select_from(PHOTOS).where(
            p.id.in_(ids), *photo_match(org, rules, "random", filters))) or 0)
        if whole:
            return hits, True
        if hits >= ESTIMATE_MIN_HITS:
            return round(span * hits / len(ids)), False
    exact = session.scalar(select(func.count()).select_from(PHOTOS).where(*photo_match(org, rules, "random",
                                                                                         filters)))
    return int(exact or 0), True


def photo_level_only(filters: QueueFilters) -> bool:
    """The filters name no tag property (label, provider, model, prompt version): only dates, or nothing."""
    return filters.label is None and filters.provider is None and filters.model is None \
        and filters.prompt_version_id is None


def band_size(session: Session, *, org: int, rules: RuleSet, filters: QueueFilters) -> int:
    """The band queue's size without a per-photo probe: photos in needs_review (the pipeline keeps one there
    while it has a recorded needs_review tag undecided) plus the other processed photos a threshold change put
    in the band. For filters on photos only (`photo_level_only`)."""
    p = PHOTOS.c
    dates = arrived(filters)
    in_review = select(func.count()).select_from(PHOTOS).where(p.organization_id == org,
                                                               p.status == "needs_review", *dates)
    _recorded, by_rules = _band_tags(org, rules, filters)
    moved = select(func.count()).select_from(PHOTOS).where(p.organization_id == org, p.status == "completed",
                                                           *dates, exists(select(TAGS.c.id).where(*by_rules)))
    return int(session.scalar(in_review) or 0) + int(session.scalar(moved) or 0)


def next_photo(session: Session, *, order: str, org: int, me: int, rules: RuleSet, filters: QueueFilters,
               now: datetime, passed: Sequence[int], seed: int) -> int | None:
    """The next photo of `order` for reviewer `me` (not locked; the caller claims it)."""
    if order == "lowest_confidence":
        return lowest_confidence(session, org=org, me=me, rules=rules, filters=filters, now=now, passed=passed)
    if order == "oldest":
        return oldest(session, org=org, me=me, rules=rules, filters=filters, now=now, passed=passed)
    if order == "disagreement":
        return disagreement(session, org=org, me=me, rules=rules, filters=filters, now=now, passed=passed)
    return random_sample(session, org=org, me=me, rules=rules, filters=filters, now=now, passed=passed, seed=seed)

